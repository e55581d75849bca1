/**
 * `@chalk/sandbox/server`: the gRPC sandbox service, for hosts (the Chalk server, internal
 * services) to mount over any {@link SandboxRuntime} with `@chalk/rpc`'s `addService`, and
 * {@link sandboxesFromImages}, which makes a runtime start sandboxes from image references (a
 * server takes no host path from a client).
 *
 * @packageDocumentation
 */
export { type ImageRootfs, sandboxesFromImages } from "./image-sandboxes.js";
export { ENVIRONMENT_LABEL, type SandboxServiceOptions, sandboxServiceImpl } from "./sandbox-service.js";
