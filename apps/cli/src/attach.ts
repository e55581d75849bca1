/**
 * Attaches a process in a container to this terminal: stdout and stderr stream out with
 * backpressure; with `stdin`, this process's stdin streams in (its EOF reaching the process); with
 * `tty`, the local terminal is in raw mode (Ctrl-C is a byte the remote terminal turns into SIGINT)
 * and follows window resizes; signals chalk receives are forwarded to the process.
 */
import { once } from "node:events";
import type { Writable } from "node:stream";
import type { Container, Process, ProcessExit, SpawnOptions } from "@chalk/container";
import { ChalkError, Code } from "@chalk/core";
import { signalNumber } from "@chalk/sandbox";
import { CANNOT_RUN, ExitCode, NOT_FOUND } from "./errors.js";
import { note } from "./terminal.js";

/** Signals forwarded to the process (SIGINT only without a TTY: with one, Ctrl-C travels as a byte). */
const FORWARDED: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];

/** Options for {@link runAttached}. */
export interface AttachOptions {
  /** Stream this process's stdin to the process (`-i`). */
  stdin: boolean;
  /** Run on a PTY the size of this terminal (`-t`). */
  tty: boolean;
  /** Extra environment. */
  env?: Record<string, string>;
  /** Working directory. */
  workdir?: string;
}

/** The terminal size to give a PTY (80×24 when stdout is not a terminal). */
function ptySize(): { cols: number; rows: number } {
  return { cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 };
}

/** The exit code of a process that ended: its code, or 128 + the signal's number. */
export function exitCodeOf(exit: ProcessExit): number {
  if (exit.exitCode !== null) return exit.exitCode;
  return 128 + (exit.signal ? signalNumber(exit.signal) : 9);
}

/**
 * Why a command could not start, as docker's codes: 127 when it was not found, 126 when it cannot
 * be run; undefined when chalk or the server failed (125). The sandbox reports exec failures as
 * `exec "<argv0>": …`, naming the field at fault:
 * - `workdir` (missing, not a directory, not enterable): 126, as `docker exec -w` gives for runc's
 *   "chdir to cwd … failed" (an OCI runtime exec failure: the command was never looked up);
 * - a command name not on PATH (not_found): 127; a path: the container is asked whether it exists
 *   (127 when not, 126 when it exists but cannot be run);
 * - permission denied: 126.
 */
export async function startFailureCode(
  container: Pick<Container, "sandbox">,
  argv0: string,
  err: ChalkError,
): Promise<number | undefined> {
  if (!err.rawMessage.startsWith(`exec ${JSON.stringify(argv0)}`)) return undefined;
  if (err.field === "workdir") return CANNOT_RUN;
  if (err.code === Code.PermissionDenied) return CANNOT_RUN;
  if (!argv0.includes("/")) return err.code === Code.NotFound ? NOT_FOUND : CANNOT_RUN;
  try {
    const probe = await container.sandbox.exec("/bin/sh", "-c", 'test -e "$1"', "sh", argv0);
    return probe.exitCode === 0 ? CANNOT_RUN : NOT_FOUND;
  } catch {
    return CANNOT_RUN;
  }
}

async function pipeOut(from: NodeJS.ReadableStream, to: Writable): Promise<void> {
  for await (const chunk of from) {
    if (!to.write(chunk as Uint8Array)) await once(to, "drain");
  }
}

/**
 * Starts `argv` in the container and attaches it; resolves to the exit code chalk should exit with.
 * A command that cannot start throws {@link ExitCode} 126 or 127 after printing why.
 */
export async function runAttached(
  container: Container,
  argv: string[],
  options: AttachOptions,
): Promise<number> {
  const tty = options.tty;
  const spawnOptions: SpawnOptions = {
    ...(options.env ? { env: options.env } : {}),
    ...(options.workdir ? { workdir: options.workdir } : {}),
    ...(tty ? { pty: ptySize() } : {}),
  };
  let proc: Process;
  try {
    proc = await container.sandbox.spawn(argv, spawnOptions);
  } catch (err) {
    const e = ChalkError.from(err);
    const code = await startFailureCode(container, argv[0]!, e);
    if (code === undefined) throw e;
    note(`chalk: ${e.message}`);
    throw new ExitCode(code);
  }
  const stdin = process.stdin;
  const raw = tty && options.stdin && stdin.isTTY === true;
  const cleanups: (() => void)[] = [];
  try {
    if (raw) {
      stdin.setRawMode(true);
      cleanups.push(() => stdin.setRawMode(false));
    }
    if (tty && process.stdout.isTTY) {
      const onResize = () => {
        const { cols, rows } = ptySize();
        proc.resize(cols, rows).catch(() => undefined);
      };
      process.stdout.on("resize", onResize);
      cleanups.push(() => process.stdout.off("resize", onResize));
    }
    for (const sig of FORWARDED) {
      const forward = () => {
        proc.signal(sig).catch(() => undefined);
      };
      process.on(sig, forward);
      cleanups.push(() => process.off(sig, forward));
    }
    if (options.stdin) {
      void (async () => {
        try {
          for await (const chunk of stdin) await proc.stdin.write(chunk as Uint8Array);
          await proc.stdin.end();
        } catch {
          // The process ended and closed its stdin: nothing more to send.
        }
      })();
      cleanups.push(() => {
        stdin.pause();
        stdin.destroy();
      });
    } else {
      await proc.stdin.end();
    }
    const [exit] = await Promise.all([
      proc.wait(),
      pipeOut(proc.stdout, process.stdout),
      pipeOut(proc.stderr, process.stderr),
    ]);
    if (exit.timedOut) note("chalk: the command timed out and was killed");
    if (exit.oomKilled) note("chalk: the command was killed: the container ran out of memory");
    return exitCodeOf(exit);
  } finally {
    for (const c of cleanups.reverse()) c();
  }
}
