/**
 * `@chalk/sandbox`: gVisor sandboxes with streaming processes. One interface,
 * {@link SandboxRuntime} → {@link Sandbox} → {@link Process}, served in-process by `LocalRuntime`
 * (`@chalk/sandbox/local`, needs runsc and root) or remotely by {@link connectSandboxes} through a
 * Chalk server.
 *
 * @example
 * ```ts
 * import { connectSandboxes } from "@chalk/sandbox";
 *
 * const runtime = connectSandboxes(); // CHALK_API_SERVER, CHALK_TOKEN, CHALK_ENVIRONMENT
 * await using sandbox = await runtime.create({ image: "python:3.12-slim" });
 * const proc = await sandbox.spawn(["sh", "-c", "cat; echo done >&2"]);
 * await proc.stdin.write("hello\n");
 * await proc.stdin.end();
 * for await (const chunk of proc.stdout) process.stdout.write(chunk);
 * console.log(await proc.wait()); // { exitCode: 0, signal: null, ... }
 * ```
 *
 * @packageDocumentation
 */

export { ChalkError, Code } from "@chalk/core";
// For libraries that implement or wrap a runtime.
export {
  type CollectedOutput,
  type CollectOptions,
  collectProcess,
  execBuffered,
  feedStdin,
} from "./exec.js";
export { splitExecArgs, validateArgv } from "./exec-args.js";
export { checkExecLimits, EXEC_LIMITS } from "./exec-limits.js";
export { type WaitStatus, waitStatusFromExitCode } from "./local/wait-status.js";
// For SDK users.
export { connectSandboxes, type SandboxConnectOptions } from "./remote/remote-runtime.js";
export { sendableSignal, signalName, signalNumber } from "./signals.js";
export type {
  ExecOptions,
  ExecResult,
  Process,
  ProcessExit,
  ProcessStdin,
  Sandbox,
  SandboxCreateOptions,
  SandboxInfo,
  SandboxMount,
  SandboxRuntime,
  SandboxState,
  SandboxStopOptions,
  SignalLike,
  SpawnOptions,
} from "./types.js";
