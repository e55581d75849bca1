/**
 * `@chalk/server`: the Chalk gRPC server as a library, for embedding and tests. Most users run the
 * `chalk-server` binary instead.
 *
 * @example
 * ```ts
 * import { localBackend, parseConfig, startServer } from "@chalk/server";
 *
 * const parsed = parseConfig(["--listen", "127.0.0.1:0", "--data-dir", "/tmp/chalk", "--insecure-no-auth"]);
 * if (!parsed.help) {
 *   const server = await startServer(parsed.config, { backend: localBackend });
 *   console.log(server.address);
 *   await server.close(); // containers keep running
 * }
 * ```
 *
 * @packageDocumentation
 */

export {
  type BackendCapability,
  type BackendCapacity,
  type BackendContainer,
  type BackendImage,
  type BackendImages,
  type BackendSecrets,
  type BackendVolumes,
  type BuildLogLine,
  type ComputeBackend,
  type ContainerEnd,
  type ContainerLaunch,
  type ContainerLogs,
  requireCapability,
  type VolumeMountRequest,
} from "./backend/compute-backend.js";
export type {
  ContainerRecord,
  ContainerRecords,
  ContainerRef,
  ContainerUpdate,
} from "./backend/container-records.js";
export { SqliteContainerRecords } from "./backend/sqlite-container-records.js";
export { unimplemented } from "./backend/unimplemented.js";
export {
  ConfigError,
  type EnvironmentDefaults,
  environmentDefaults,
  isLoopback,
  type ParsedArgs,
  parseConfig,
  type ServerConfig,
  USAGE,
} from "./config.js";
export { DataDirInUseError, type DataDirLock, lockDataDir } from "./data-dir-lock.js";
export { localBackend } from "./local/local-backend.js";
export { type RunningServer, type ServerStartOptions, startServer } from "./server.js";
export type { ServiceAdder } from "./service-adder.js";
