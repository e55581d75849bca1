import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code, invalidArgument, notFound } from "@chalk/core";
import { validateArgv } from "../exec-args.js";
import { runscSignalNumber } from "../signals.js";
import type { Process, ProcessExit, ProcessStdin, SignalLike, SpawnOptions } from "../types.js";
import { keep } from "./keep-output.js";
import { PtyRelay } from "./pty.js";
import { type RunscContext, runsc, runscError, spawnRunsc } from "./runsc.js";
import { type WaitStatus, waitStatusFromExitCode, waitStatusFromLog } from "./wait-status.js";

/** What {@link LocalProcess.start} needs from its sandbox. */
export interface LocalProcessStart {
  ctx: RunscContext;
  sandboxId: string;
  sandboxDir: string;
  /** The PTY relay binary, for processes spawned with `pty`. */
  ptyRelayPath: string;
  argv: readonly string[];
  options: SpawnOptions;
  /** True when the sandbox no longer runs (its processes died with it). */
  sandboxGone(): Promise<boolean>;
  /** How many OOM kills the sandbox's memory cgroup has seen so far. */
  oomKills(): number;
}

/** The `process` object of an OCI config, as far as exec needs it. */
interface ProcessSpec {
  args: string[];
  env: string[];
  cwd: string;
  terminal: boolean;
  [key: string]: unknown;
}

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
 * The exec's OCI process: the sandbox's own (user, capabilities, environment, working directory)
 * with this argv, extra environment, working directory and terminal. Handed to runsc as a file, so
 * neither argv nor environment (secrets) shows in the host's process list or in runsc's log.
 */
function processSpec(s: LocalProcessStart): ProcessSpec {
  const config = JSON.parse(readFileSync(join(s.sandboxDir, "bundle", "config.json"), "utf8")) as {
    process: ProcessSpec;
  };
  const env = new Map(
    config.process.env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)] as const),
  );
  if (s.options.pty) env.set("TERM", env.get("TERM") ?? "xterm-256color");
  for (const [k, v] of Object.entries(s.options.env ?? {})) env.set(k, v);
  return {
    ...config.process,
    args: [...s.argv],
    env: [...env].map(([k, v]) => `${k}=${v}`),
    cwd: s.options.workdir ?? config.process.cwd,
    terminal: s.options.pty !== undefined,
  };
}

/**
 * A process started with `runsc exec`. Its stdio are the runsc process's pipes, which gVisor hands
 * to the process inside, so backpressure is the kernel's: a reader that stops reading fills the
 * pipe and stalls the writer in the sandbox. Nothing is buffered beyond the pipe and one
 * 64 KiB stream buffer per direction.
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
    input: Writable,
    streams: { stdout: Readable; stderr: Readable },
    ended: Promise<{ code: number | null; log: string }>,
    private readonly pty: PtyRelay | undefined,
    private readonly oomKillsBefore: number,
  ) {
    this.stdout = streams.stdout;
    this.stderr = streams.stderr;
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
    const timer =
      s.options.timeoutSecs === undefined
        ? undefined
        : setTimeout(() => {
            this.#timedOut = true;
            void this.signal("SIGKILL").catch(() => undefined);
          }, s.options.timeoutSecs * 1000);
    this.#exit = (async () => {
      const { code, log } = await ended;
      this.#exited = true;
      if (timer) clearTimeout(timer);
      this.pty?.close();
      return this.#interpret(code, log);
    })();
  }

  /** Starts the process; resolves once it runs inside the sandbox (its pid is known). */
  static async start(s: LocalProcessStart): Promise<LocalProcess> {
    validateArgv(s.argv);
    validateSpawnOptions(s.options);
    const base = join(s.sandboxDir, `exec-${process.pid}-${++counter}`);
    const pidFile = `${base}.pid`;
    const specFile = `${base}.json`;
    // runsc's info log for this exec: about twenty lines, the last one the exact wait status.
    const logFile = `${base}.log`;
    // The small files of an exec (the bundle's config, the process file, the pid file, runsc's
    // log) are read and written synchronously: each is a few hundred bytes in the local state
    // directory, a few microseconds of blocking against four trips through libuv's thread pool
    // per async call, which measured several milliseconds per exec on a loaded machine.
    try {
      writeFileSync(specFile, JSON.stringify(processSpec(s)), { mode: 0o600 });
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
    let streams: { stdout: Readable; stderr: Readable };
    let input: Writable;
    try {
      if (s.options.pty) {
        pty = new PtyRelay(s.ptyRelayPath, s.options.pty);
        child = pty.spawn(s.ctx, args);
        streams = { stdout: pty.output, stderr: pty.emptyStderr };
        input = pty.input;
      } else {
        child = spawnRunsc(s.ctx, args, { stdio: ["pipe", "pipe", "pipe"] });
        // Listen at once: Node discards the output of a child nobody listens to when it exits.
        streams = { stdout: keep(child.stdout as Readable), stderr: keep(child.stderr as Readable) };
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
      const pid = await waitForPid(pidFile, exited);
      if (pid === undefined) {
        // runsc failed before the process started: what it said is on stderr (the terminal with a PTY).
        const [stderr] = await Promise.all([drain(pty ? streams.stdout : streams.stderr), ended]);
        pty?.close();
        if (await s.sandboxGone()) {
          throw new ChalkError(
            Code.FailedPrecondition,
            `sandbox ${JSON.stringify(s.sandboxId)} is not running`,
          );
        }
        throw runscError(`exec ${JSON.stringify(s.argv[0])}`, stderr);
      }
      return new LocalProcess(pid, s, input, streams, ended, pty, oomKillsBefore);
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
    const n = runscSignalNumber(signal);
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

async function drain(stream: Readable): Promise<string> {
  let s = "";
  for await (const chunk of stream) s += chunk.toString();
  return s;
}

/** A small state file's text, or "" when it is not there (yet). */
function readSmall(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
