/**
 * `@chalk/sandbox/server`: the gRPC sandbox service, for hosts (the Chalk server, internal
 * services) to mount over any {@link SandboxRuntime} with `@chalk/rpc`'s `addService`.
 *
 * @packageDocumentation
 */
export { ENVIRONMENT_LABEL, type SandboxServiceOptions, sandboxServiceImpl } from "./sandbox-service.js";
