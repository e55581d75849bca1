import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code, invalidArgument, notFound } from "@chalk/core";
import { validateArgv } from "../exec-args.js";
import { checkExecLimits } from "../exec-limits.js";
import { sendableSignal } from "../signals.js";
import type { Process, ProcessExit, ProcessStdin, SignalLike, SpawnOptions } from "../types.js";
import { execStartError, runscFatalError } from "./exec-errors.js";
import { ProcessOutput } from "./process-output.js";
import { PtyRelay } from "./pty.js";
import { type RunscContext, runsc, spawnRunsc } from "./runsc.js";
import { type OciProcess, readRunscProcess } from "./runsc-state.js";
import { inspectSandboxPath } from "./sandbox-path.js";
import { type WaitStatus, waitStatusFromExitCode, waitStatusFromLog } from "./wait-status.js";

/** What {@link LocalProcess.start} needs from its sandbox. */
export interface LocalProcessStart {
  ctx: RunscContext;
  sandboxId: string;
  sandboxDir: string;
  /** The sandbox's root filesystem on the host (its overlayfs mount), to check a `workdir` in. */
  rootfs: string;
  /** Mount points inside the sandbox (`/proc`, volumes…), whose content is not in `rootfs`. */
  mountTargets: readonly string[];
  /** The PTY relay binary, for processes spawned with `pty`. */
  ptyRelayPath: string;
  argv: readonly string[];
  options: SpawnOptions;
  /** True when the sandbox no longer runs (its processes died with it). */
  sandboxGone(): Promise<boolean>;
  /** How many OOM kills the sandbox's memory cgroup has seen so far. */
  oomKills(): number;
}

/**
 * Seconds between a timeout's SIGKILL to the process group and giving up on `runsc exec` itself:
 * then the host's runsc process is killed, so `timeoutSecs` bounds the call whatever runsc does.
 */
const KILL_GRACE_MS = 5000;

let counter = 0;

function validateSpawnOptions(o: SpawnOptions): void {
  if (
    o.timeoutSecs !== undefined &&
    !(typeof o.timeoutSecs === "number" && o.timeoutSecs > 0 && o.timeoutSecs <= 86_400 * 7)
  ) {
    throw invalidArgument("timeoutSecs", `${o.timeoutSecs} is not a number of seconds`, "a number above 0");
  }
  if (
    o.workdir !== undefined &&
    (typeof o.workdir !== "string" || !o.workdir.startsWith("/") || o.workdir.includes("\0"))
  ) {
    throw invalidArgument("workdir", `${JSON.stringify(o.workdir)} is not an absolute path`);
  }
  for (const [k, v] of Object.entries(o.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
      throw invalidArgument(`env.${k}`, "not a valid variable name", "letters, digits and _");
    if (typeof v !== "string" || v.includes("\0"))
      throw invalidArgument(`env.${k}`, "must be a string without NUL bytes");
  }
  if (o.pty !== undefined) {
    for (const f of ["cols", "rows"] as const) {
      const n = o.pty[f];
      if (!Number.isInteger(n) || n < 1 || n > 65_535)
        throw invalidArgument(`pty.${f}`, `${n} is not 1 to 65535`);
    }
  }
}

/**
 * The exec's OCI process: the sandbox's own (user, capabilities, environment, working directory),
 * read from runsc's state, with this argv, extra environment, working directory and terminal.
 * Handed to runsc as a root-only file deleted once the process runs, so neither argv nor
 * environment (secrets) shows in the host's process list or in runsc's log. The environment and
 * argv are checked against the kernel's limits here, merged as the process will get them.
 */
function processSpec(s: LocalProcessStart): OciProcess {
  let base: OciProcess;
  try {
    base = readRunscProcess(s.ctx.root, s.sandboxId);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw notRunning(s.sandboxId);
    throw ChalkError.from(err, Code.Internal);
  }
  const env = new Map(
    base.env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)] as const),
  );
  if (s.options.pty) env.set("TERM", env.get("TERM") ?? "xterm-256color");
  for (const [k, v] of Object.entries(s.options.env ?? {})) env.set(k, v);
  checkExecLimits(s.argv, Object.fromEntries(env));
  return {
    ...base,
    args: [...s.argv],
    env: [...env].map(([k, v]) => `${k}=${v}`),
    cwd: s.options.workdir ?? base.cwd,
    terminal: s.options.pty !== undefined,
  };
}

function notRunning(id: string): ChalkError {
  return new ChalkError(Code.FailedPrecondition, `sandbox ${JSON.stringify(id)} is not running`);
}

/**
 * Checks an explicit working directory in the sandbox's root filesystem before runsc starts the
 * process there: gVisor accepts a regular file as one (Linux: ENOTDIR).
 */
function checkWorkdir(s: LocalProcessStart, workdir: string): void {
  const kind = inspectSandboxPath(s.rootfs, workdir, s.mountTargets);
  const what = `exec ${JSON.stringify(s.argv[0])}: workdir ${JSON.stringify(workdir)}`;
  if (kind === "missing") {
    throw new ChalkError(Code.NotFound, `${what}: it does not exist in the sandbox`, { field: "workdir" });
  }
  if (kind === "not-directory") {
    throw new ChalkError(Code.FailedPrecondition, `${what}: it is not a directory in the sandbox`, {
      field: "workdir",
    });
  }
}

/**
 * A process started with `runsc exec`. Its stdio are the runsc process's pipes, which gVisor hands
 * to the process inside, so backpressure is the kernel's: a reader that stops reading fills the
 * pipe and stalls the writer in the sandbox. Nothing is buffered beyond the pipe and one
 * 256 KiB stream buffer per output (see `ProcessOutput`). stdout and stderr end at most {@link OUTPUT_DRAIN_MS} after
 * the process exits, whether or not background children still hold them.
 */
export class LocalProcess implements Process {
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly stdin: ProcessStdin;
  #exit: Promise<ProcessExit>;
  #sent = new Set<number>();
  #timedOut = false;
  #exited = false;

  private constructor(
    readonly pid: number,
    private readonly s: LocalProcessStart,
    private readonly child: ChildProcess,
    input: Writable,
    outputs: ProcessOutput[],
    ended: Promise<{ code: number | null; log: string }>,
    private readonly pty: PtyRelay | undefined,
    private readonly oomKillsBefore: number,
  ) {
    this.stdout = (outputs[0] as ProcessOutput).stream;
    this.stderr = outputs[1]?.stream ?? (pty as PtyRelay).emptyStderr;
    // A process that exits without reading its stdin closes the pipe under us: not our error.
    input.on("error", () => undefined);
    this.stdin = {
      write: async (data) => {
        if (input.writableEnded || input.destroyed)
          throw new ChalkError(Code.FailedPrecondition, "stdin is closed");
        if (!input.write(typeof data === "string" ? Buffer.from(data) : data)) {
          await Promise.race([once(input, "drain"), once(input, "close")]);
        }
      },
      end: async () => {
        if (input.writableEnded || input.destroyed) return;
        const done = Promise.race([once(input, "finish"), once(input, "close")]).catch(() => undefined);
        input.end();
        await done;
      },
    };
    const timers: NodeJS.Timeout[] = [];
    if (s.options.timeoutSecs !== undefined) {
      timers.push(
        setTimeout(() => {
          this.#timedOut = true;
          void this.signal("SIGKILL").catch(() => undefined);
          // runsc exec should now return; if it does not, end it so the timeout bounds the call.
          timers.push(setTimeout(() => this.child.kill("SIGKILL"), KILL_GRACE_MS));
        }, s.options.timeoutSecs * 1000),
      );
    }
    this.#exit = (async () => {
      const { code, log } = await ended;
      this.#exited = true;
      for (const t of timers) clearTimeout(t);
      // runsc's own failure to wait for the process (`waiting on pid N: …`) went to the process's
      // stderr: drop it there.
      const runscFailed = runscFatalError(log)?.startsWith(`waiting on pid ${this.pid}:`) ?? false;
      for (const o of outputs) o.finish({ runscFailed });
      this.pty?.close();
      return this.#interpret(code, log);
    })();
  }

  /** Starts the process; resolves once it runs inside the sandbox (its pid is known). */
  static async start(s: LocalProcessStart): Promise<LocalProcess> {
    validateArgv(s.argv);
    validateSpawnOptions(s.options);
    const spec = processSpec(s);
    if (s.options.workdir !== undefined) checkWorkdir(s, s.options.workdir);
    const base = join(s.sandboxDir, `exec-${process.pid}-${++counter}`);
    const pidFile = `${base}.pid`;
    const specFile = `${base}.json`;
    // runsc's info log for this exec: about twenty lines, the last one the exact wait status.
    const logFile = `${base}.log`;
    // The small files of an exec (the process file, the pid file, runsc's state and log) are read
    // and written synchronously: each is a few KiB in the local state directory, a few
    // microseconds of blocking against four trips through libuv's thread pool per async call,
    // which measured several milliseconds per exec on a loaded machine.
    try {
      writeFileSync(specFile, JSON.stringify(spec), { mode: 0o600 });
    } catch (err) {
      // The sandbox's state went away under us: it was stopped meanwhile.
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw notFound("sandbox", s.sandboxId);
      throw ChalkError.from(err, Code.Internal);
    }
    const oomKillsBefore = s.oomKills();
    const args = [
      `--debug-log=${logFile}`,
      "exec",
      `--internal-pid-file=${pidFile}`,
      `--process=${specFile}`,
      s.sandboxId,
    ];
    let pty: PtyRelay | undefined;
    let child: ChildProcess;
    let outputs: ProcessOutput[];
    let input: Writable;
    // Known once the process runs: the start of the line runsc prints if it loses the process.
    let pid: number | undefined;
    const runscLinePrefix = () => (pid === undefined ? undefined : `waiting on pid ${pid}: `);
    try {
      if (s.options.pty) {
        pty = new PtyRelay(s.ptyRelayPath, s.options.pty);
        child = pty.spawn(s.ctx, args);
        outputs = [new ProcessOutput(pty.output, { runscLinePrefix })];
        input = pty.input;
      } else {
        child = spawnRunsc(s.ctx, args, { stdio: ["pipe", "pipe", "pipe"] });
        outputs = [
          new ProcessOutput(child.stdout as Readable),
          new ProcessOutput(child.stderr as Readable, { runscLinePrefix }),
        ];
        input = child.stdin as Writable;
      }
    } catch (err) {
      await rm(specFile, { force: true });
      throw ChalkError.from(err, Code.Internal);
    }
    // Listen for the exit at once: a short process may end before its pid file is read.
    const exited = new Promise<number | null>((resolve) => {
      child.once("error", () => resolve(null));
      child.once("exit", (code) => resolve(code));
    });
    const ended = exited.then(async (code) => {
      const log = readSmall(logFile);
      void rm(logFile, { force: true }).catch(() => undefined);
      return { code, log };
    });
    try {
      pid = await waitForPid(pidFile, exited);
      if (pid === undefined) {
        // runsc failed before the process started; why is in its log (stderr is the process's).
        const { log } = await ended;
        for (const o of outputs) {
          o.finish({ drainMs: 0 });
          o.stream.resume();
        }
        pty?.close();
        if (await s.sandboxGone()) throw notRunning(s.sandboxId);
        throw execStartError({
          argv: s.argv,
          workdir: spec.cwd,
          path: spec.env.find((e) => e.startsWith("PATH="))?.slice(5),
          runscMessage: runscFatalError(log),
        });
      }
      return new LocalProcess(pid, s, child, input, outputs, ended, pty, oomKillsBefore);
    } finally {
      // runsc has read the process file and written the pid file by now: both go at once, off the
      // exec's critical path.
      void Promise.all([rm(pidFile, { force: true }), rm(specFile, { force: true })]).catch(() => undefined);
    }
  }

  async #interpret(code: number | null, log: string): Promise<ProcessExit> {
    const timedOut = this.#timedOut;
    let status: WaitStatus | undefined = waitStatusFromLog(log);
    if (!status) {
      // runsc lost the process: the sandbox died under it (stopped, or killed for its memory).
      if (code === null || code >= 128) {
        if (await this.s.sandboxGone()) {
          return { exitCode: null, signal: "SIGKILL", timedOut, oomKilled: await this.#oomKilled() };
        }
      }
      status =
        code === null ? { exitCode: null, signal: "SIGKILL" } : waitStatusFromExitCode(code, this.#sent);
    }
    const oomKilled = status.signal === "SIGKILL" && !timedOut && (await this.#oomKilled());
    return { ...status, timedOut, oomKilled };
  }

  /** Whether the OOM killer struck in the sandbox while this process ran. */
  async #oomKilled(): Promise<boolean> {
    return this.s.oomKills() > this.oomKillsBefore;
  }

  /**
   * Sends a signal to the process's group: runsc starts each exec as the leader of its own session
   * and process group (pgid = pid), and `runsc kill --pgid` delivers to every member, children
   * included, whatever the root filesystem holds. Signalling a process that has ended does nothing.
   */
  async signal(signal: SignalLike): Promise<void> {
    const n = sendableSignal(signal);
    if (this.#exited) return;
    this.#sent.add(n);
    await runsc(this.s.ctx, ["kill", `--pgid=${this.pid}`, this.s.sandboxId, String(n)]).catch(
      async (err) => {
        // The group is gone (the process ended meanwhile), or the signal raced with the exit.
        if (/no such process group/i.test(ChalkError.from(err).message)) return;
        if (!(await this.#endedSoon())) throw err;
      },
    );
  }

  /** Whether the process has ended or ends within a moment (a signal raced with its exit). */
  async #endedSoon(): Promise<boolean> {
    await Promise.race([this.#exit, sleep(200)]);
    return this.#exited;
  }

  async resize(cols: number, rows: number): Promise<void> {
    if (!this.pty) throw new ChalkError(Code.FailedPrecondition, "resize: the process has no PTY");
    for (const [f, n] of [
      ["cols", cols],
      ["rows", rows],
    ] as const) {
      if (!Number.isInteger(n) || n < 1 || n > 65_535) throw invalidArgument(f, `${n} is not 1 to 65535`);
    }
    await this.pty.resize(cols, rows);
  }

  wait(): Promise<ProcessExit> {
    return this.#exit;
  }
}

/**
 * Polls for the pid file runsc writes once the process runs (every 2 ms: runsc offers no other
 * signal of the start). Undefined when runsc exited without writing it (the exec failed).
 */
async function waitForPid(pidFile: string, exit: Promise<unknown>): Promise<number | undefined> {
  let exited = false;
  void exit.then(() => {
    exited = true;
  });
  for (let waited = 0; ; waited += 2) {
    const pid = Number.parseInt(readSmall(pidFile), 10);
    if (pid > 0) return pid;
    if (exited) {
      // The pid file may have been written just before the exit.
      const last = Number.parseInt(readSmall(pidFile), 10);
      return last > 0 ? last : undefined;
    }
    await sleep(waited < 1000 ? 2 : 20);
  }
}

/** A small state file's text, or "" when it is not there (yet); read synchronously (see {@link LocalProcess.start}). */
export function readSmall(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
