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
  ConfigError,
  type EnvironmentDefaults,
  environmentDefaults,
  isLoopback,
  type ParsedArgs,
  parseConfig,
  type ServerConfig,
  USAGE,
} from "./config.js";
export { localBackend } from "./local-backend.js";
export { type Backend, type RunningServer, type ServerStartOptions, startServer } from "./server.js";
