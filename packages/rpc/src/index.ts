/**
 * `@chalk/rpc`: the one adapter between protobuf-es v2 service descriptors and `@grpc/grpc-js`.
 * Servers mount typed handlers with {@link addService}; clients get typed promises and async
 * iterables from {@link createClient}. Nothing else in Chalk imports grpc-js for calls.
 *
 * @example
 * ```ts
 * import { addService, createClient, createTransport } from "@chalk/rpc";
 * addService(server, SandboxService, impl);
 * const client = createClient(SandboxService, createTransport({ address: "127.0.0.1:50051" }));
 * ```
 *
 * @packageDocumentation
 */
export {
  createClient,
  createTransport,
  defaultTransport,
  type Transport,
  type TransportCreateOptions,
} from "./client.js";
export { errorFromStatus, methodPath } from "./codec.js";
export {
  AUTHORIZATION_HEADER,
  bearerToken,
  DEFAULT_ADDRESS,
  DEFAULT_ENVIRONMENT,
  ENVIRONMENT_HEADER,
  MAX_MESSAGE_BYTES,
} from "./headers.js";
export { type ListenOptions, listen } from "./listen.js";
export { type AddServiceOptions, addService, type ServerInterceptor } from "./server.js";
export type {
  AnyService,
  CallContext,
  CallOptions,
  Client,
  ClientMethodFor,
  HandlerFor,
  MethodsOf,
  ServiceImpl,
} from "./service-types.js";
