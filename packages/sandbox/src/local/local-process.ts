import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import { validateArgv } from "../exec-args.js";
import { signalName, signalNumber } from "../signals.js";
import type { Process, ProcessExit, ProcessStdin, SignalLike, SpawnOptions } from "../types.js";
import { keep } from "./keep-output.js";
import { PtyRelay } from "./pty.js";
import { type RunscContext, runsc, runscError, spawnRunsc } from "./runsc.js";

/** What {@link LocalProcess.start} needs from its sandbox. */
export interface LocalProcessStart {
  ctx: RunscContext;
  sandboxId: string;
  sandboxDir: string;
  defaultWorkdir: string;
  argv: readonly string[];
  options: SpawnOptions;
  /** True when the sandbox no longer runs (its process died with it). */
  sandboxGone(): Promise<boolean>;
  /** True when the sandbox's memory cgroup recorded an OOM kill. */
  oomKilled(): Promise<boolean>;
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
 * A process started with `runsc exec`. Its stdio are the runsc process's pipes, so backpressure is
 * the kernel's: a reader that stops reading fills the pipe and stalls the writer in the sandbox.
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
    child: ChildProcess,
    streams: { stdout: Readable; stderr: Readable },
    exited: Promise<number | null>,
    private readonly pty: PtyRelay | undefined,
  ) {
    this.stdout = streams.stdout;
    this.stderr = streams.stderr;
    const input = pty ? pty.input : child.stdin;
    // A process that exits without reading its stdin closes the pipe under us: not our error.
    input?.on("error", () => undefined);
    this.stdin = {
      write: async (data) => {
        if (!input || input.writableEnded || input.destroyed)
          throw new ChalkError(Code.FailedPrecondition, "stdin is closed");
        if (!input.write(typeof data === "string" ? Buffer.from(data) : data)) {
          await Promise.race([once(input, "drain"), once(input, "close")]);
        }
      },
      end: async () => {
        if (!input || input.writableEnded) return;
        input.end();
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
      const code = await exited;
      this.#exited = true;
      if (timer) clearTimeout(timer);
      return this.#interpret(code);
    })();
  }

  /** Starts the process; resolves once it runs inside the sandbox (its pid is known). */
  static async start(s: LocalProcessStart): Promise<LocalProcess> {
    validateArgv(s.argv);
    validateSpawnOptions(s.options);
    const pidFile = join(s.sandboxDir, `exec-${process.pid}-${++counter}.pid`);
    const cwd = s.options.workdir ?? s.defaultWorkdir;
    const args = ["exec", `--internal-pid-file=${pidFile}`, `--cwd=${cwd}`];
    for (const [k, v] of Object.entries(s.options.env ?? {})) args.push(`--env=${k}=${v}`);
    let pty: PtyRelay | undefined;
    let child: ChildProcess;
    if (s.options.pty) {
      pty = await PtyRelay.create(s.sandboxDir, s.options.pty, {
        argv: s.argv,
        env: s.options.env ?? {},
        cwd,
      });
      child = pty.spawn(s.ctx, [
        "exec",
        `--internal-pid-file=${pidFile}`,
        `--process=${pty.processFile}`,
        s.sandboxId,
      ]);
    } else {
      child = spawnRunsc(s.ctx, [...args, s.sandboxId, ...s.argv], { stdio: ["pipe", "pipe", "pipe"] });
    }
    const streams = pty
      ? { stdout: pty.output, stderr: pty.emptyStderr }
      : { stdout: keep(child.stdout as Readable), stderr: keep(child.stderr as Readable) };
    // Listen for the exit at once: a short process may end before its pid file is read.
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const pid = await waitForPid(pidFile, exited);
      if (pid === undefined) {
        // runsc failed before the process started: what it said is on stderr.
        const stderr = await drain(pty ? streams.stdout : streams.stderr);
        pty?.close();
        if (await s.sandboxGone()) {
          throw new ChalkError(
            Code.FailedPrecondition,
            `sandbox ${JSON.stringify(s.sandboxId)} is not running`,
          );
        }
        throw runscError(`exec ${JSON.stringify(s.argv[0])}`, stderr);
      }
      return new LocalProcess(pid, s, child, streams, exited, pty);
    } finally {
      await rm(pidFile, { force: true });
    }
  }

  async #interpret(code: number | null): Promise<ProcessExit> {
    this.pty?.close();
    // runsc exec exits 128+N when a signal ended the process, and 128 when the sandbox itself died.
    if (code === 128 || code === null) {
      if (await this.s.sandboxGone()) {
        const oom = await this.s.oomKilled();
        return { exitCode: null, signal: "SIGKILL", timedOut: this.#timedOut, oomKilled: oom };
      }
    }
    if (code !== null && code > 128 && code < 128 + 65) {
      const sig = code - 128;
      // Only signals known to have ended it are reported as signals; `exit 137` stays an exit code.
      if (this.#sent.has(sig) || this.#timedOut) {
        return { exitCode: null, signal: signalName(sig), timedOut: this.#timedOut, oomKilled: false };
      }
    }
    return { exitCode: code ?? 128, signal: null, timedOut: this.#timedOut, oomKilled: false };
  }

  /**
   * Sends a signal to the process's group: runsc starts each exec as the leader of its own session
   * and process group, so `kill -N -pid` from a helper inside reaches its children too. Root
   * filesystems without a shell get the signal on the process alone (`runsc kill --pid`).
   */
  async signal(signal: SignalLike): Promise<void> {
    const n = signalNumber(signal);
    if (this.#exited) return;
    this.#sent.add(n);
    try {
      // dash's kill takes no "--": `kill -N -PGID` names the group.
      await runsc(this.s.ctx, ["exec", this.s.sandboxId, "/bin/sh", "-c", `kill -${n} -${this.pid}`]);
    } catch {
      await runsc(this.s.ctx, ["kill", `--pid=${this.pid}`, this.s.sandboxId, String(n)]).catch((err) => {
        if (!this.#exited) throw err;
      });
    }
  }

  async resize(cols: number, rows: number): Promise<void> {
    if (!this.pty) throw new ChalkError(Code.FailedPrecondition, "resize: the process has no PTY");
    for (const [f, n] of [
      ["cols", cols],
      ["rows", rows],
    ] as const) {
      if (!Number.isInteger(n) || n < 1 || n > 65_535) throw invalidArgument(f, `${n} is not 1 to 65535`);
    }
    this.pty.resize(cols, rows);
  }

  wait(): Promise<ProcessExit> {
    return this.#exit;
  }
}

async function waitForPid(pidFile: string, exit: Promise<unknown>): Promise<number | undefined> {
  let exited = false;
  void exit.then(() => {
    exited = true;
  });
  for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
    const text = await readFile(pidFile, "utf8").catch(() => "");
    const pid = Number.parseInt(text, 10);
    if (pid > 0) return pid;
    if (exited) {
      // The pid file may have been written just before the exit.
      const last = Number.parseInt(await readFile(pidFile, "utf8").catch(() => ""), 10);
      return last > 0 ? last : undefined;
    }
    await sleep(delay);
  }
}

async function drain(stream: Readable): Promise<string> {
  let s = "";
  for await (const chunk of stream) s += chunk.toString();
  return s;
}
