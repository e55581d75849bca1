/**
 * `@chalk/rpc`: the one adapter between protobuf-es v2 service descriptors and `@grpc/grpc-js`.
 * Servers mount typed handlers with {@link addService} on a server from {@link createServer};
 * clients get typed promises and async iterables from {@link createClient}. No grpc-js type appears
 * in this package's API: options are plain values (address, token, environment, TLS, signal,
 * deadline), and errors are ChalkErrors that keep their code, field and details across the wire.
 *
 * @example
 * ```ts
 * import { addService, createClient, createTransport, listen } from "@chalk/rpc";
 * const server = await listen({
 *   address: "127.0.0.1:0",
 *   register: (s) => addService(s, SandboxService, impl),
 * });
 * const client = createClient(SandboxService, createTransport({ address: server.address }));
 * await server.stop();
 * ```
 *
 * @packageDocumentation
 */

export { isLoopback } from "./address.js";
export { createClient } from "./client.js";
export { methodPath } from "./codec.js";
export {
  AUTHORIZATION_HEADER,
  bearerToken,
  DEFAULT_ADDRESS,
  DEFAULT_ENVIRONMENT,
  ENVIRONMENT_HEADER,
  MAX_MESSAGE_BYTES,
} from "./headers.js";
export { DEFAULT_MAX_UNARY_READS_PER_CONNECTION, unaryReadBudget } from "./read-budget.js";
// For servers: serving services.
export {
  createServer,
  type ListenOptions,
  listen,
  type RpcServer,
  type ServerCreateOptions,
  type ServerStopOptions,
  type ServerTlsOptions,
} from "./rpc-server.js";
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

// For other libraries: the wire form of errors and method paths.
export {
  errorFromStatus,
  MAX_STATUS_DETAILS_BYTES,
  MAX_STATUS_MESSAGE_LENGTH,
  STATUS_DETAILS_TRAILER,
} from "./status.js";
// For SDK users: connecting and calling.
export {
  createTransport,
  defaultTransport,
  type Transport,
  type TransportCreateOptions,
  type TransportTlsOptions,
} from "./transport.js";
