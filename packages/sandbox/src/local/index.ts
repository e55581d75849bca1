/**
 * `@chalk/sandbox/local`: the in-process runtime. Runs gVisor sandboxes on this machine with no
 * server; needs root and the pinned runsc ({@link RUNSC_VERSION}, built by
 * `bash tooling/scripts/setup.sh`). The sandboxes it makes have the same {@link Sandbox} interface
 * as those reached through a server.
 *
 * @packageDocumentation
 */

export type { Sandbox } from "../types.js";
export { DEFAULT_CAPABILITIES, DEFAULT_PIDS } from "./bundle.js";
export { LocalRuntime, type LocalRuntimeOptions, type LocalSandboxCreateOptions } from "./local-runtime.js";
export { SANDBOX_SUBNET } from "./network.js";
export {
  defaultPtyRelayPath,
  defaultRunscPath,
  pinnedBuildDir,
  RUNSC_SETUP_COMMAND,
  RUNSC_VERSION,
} from "./runsc-binary.js";
