import { type ChildProcess, execFile, type SpawnOptions, spawn } from "node:child_process";
import { ChalkError, Code } from "@chalk/core";
import { childEnv } from "./child-env.js";

/** How one sandbox's runsc calls are made: the same global flags for every call, as runsc requires. */
export interface RunscContext {
  /** Path of the runsc binary (checked to be the pinned version before the first sandbox is made). */
  binary: string;
  /** runsc's state root (`--root`). */
  root: string;
  /**
   * `none`: loopback only, in a namespace of runsc's own. `sandbox`: gVisor's own network stack
   * (netstack) over the interfaces of the network namespace named in the sandbox's OCI config, so
   * the host kernel's TCP/IP stack is not exposed to the sandbox.
   */
  network: "none" | "sandbox";
}

/**
 * The global flags of every runsc call for a context. `--overlay2=none`: the root filesystem is
 * the host overlayfs this runtime mounts, and the sandbox's writes must land in its upper
 * directory (the image builder's layers, later quotas and snapshots), not in runsc's default
 * `root:self` file store (a 1 GiB sparse `.gvisor.filestore.<id>` inside the root filesystem).
 */
export function globalFlags(ctx: RunscContext): string[] {
  return [
    `--root=${ctx.root}`,
    `--network=${ctx.network}`,
    "--overlay2=none",
    "--gofer-network-namespace=new",
  ];
}

/** runsc's error messages, translated once: pattern → code. */
const runscErrors: [RegExp, Code][] = [
  [/does not exist|container .* not found|no such file or directory/i, Code.NotFound],
  [/already exists/i, Code.AlreadyExists],
  [
    /in state stopped|cannot .* in state|is not running|connection refused|urpc method .* failed: EOF/i,
    Code.FailedPrecondition,
  ],
  [/permission denied|operation not permitted/i, Code.PermissionDenied],
  [/cannot allocate memory|out of memory/i, Code.ResourceExhausted],
];

/** Turns a failed runsc call's stderr into a ChalkError. */
export function runscError(what: string, stderr: string, cause?: unknown): ChalkError {
  const line =
    stderr
      .trim()
      .split("\n")
      .filter((l) => l.trim() !== "")
      .at(-1) ?? "no output";
  const code = runscErrors.find(([re]) => re.test(stderr))?.[1] ?? Code.Internal;
  return new ChalkError(code, `${what}: runsc: ${line}`, { cause });
}

/** Runs one runsc command to completion and returns its stdout. */
export function runsc(ctx: RunscContext, args: readonly string[]): Promise<string> {
  const [cmd, ...argv] = runscArgv(ctx, args);
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { maxBuffer: 16 * 1024 * 1024, env: childEnv() }, (err, stdout, stderr) => {
      if (err)
        reject(runscError(`runsc ${args.find((a) => !a.startsWith("-"))}`, `${stderr}\n${err.message}`, err));
      else resolve(stdout);
    });
  });
}

/** The warnings and errors of a runsc JSON log (`--log-format=json`), one message a line. */
export function runscLogErrors(log: string): string {
  return log
    .split("\n")
    .map((l) => {
      try {
        return JSON.parse(l) as { msg?: string; level?: string };
      } catch {
        return undefined;
      }
    })
    .filter((m) => m?.level === "error" || m?.level === "warning")
    .map((m) => m?.msg ?? "")
    .join("\n");
}

/** Starts a long-running runsc command (exec) with the given stdio. */
export function spawnRunsc(
  ctx: RunscContext,
  args: readonly string[],
  options: SpawnOptions = {},
): ChildProcess {
  const [cmd, ...argv] = runscArgv(ctx, args);
  return spawn(cmd, argv, { env: childEnv(), ...options });
}

/** The full command line of a runsc call: the binary, the global flags, the arguments. */
export function runscArgv(ctx: RunscContext, args: readonly string[]): [string, ...string[]] {
  return [ctx.binary, ...globalFlags(ctx), ...args];
}
