/**
 * `@chalk/sandbox/local`: the in-process runtime. Runs gVisor sandboxes on this machine with no
 * server; needs root and the pinned runsc ({@link RUNSC_VERSION}, built by
 * `bash tooling/scripts/setup.sh`). The sandboxes it makes have the same {@link Sandbox} interface
 * as those reached through a server.
 *
 * @packageDocumentation
 */

export type { Sandbox } from "../types.js";
export { DEFAULT_CAPABILITIES, DEFAULT_PIDS, INIT_PATH } from "./bundle.js";
export { type InitLogReadOptions, readInitLog, rotatedLogPath } from "./init-log.js";
export { LocalRuntime, type LocalRuntimeOptions, type LocalSandboxCreateOptions } from "./local-runtime.js";
export { SANDBOX_SUBNET } from "./network.js";
export { OUTPUT_DRAIN_MS } from "./process-output.js";
export {
  DEFAULT_INIT_PATH,
  defaultLogWriterPath,
  defaultPtyRelayPath,
  defaultRunscPath,
  pinnedBuildDir,
  RUNSC_SETUP_COMMAND,
  RUNSC_VERSION,
} from "./runsc-binary.js";
export { DEFAULT_LOG_MAX_BYTES } from "./validate.js";
