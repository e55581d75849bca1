import { type ChildProcess, spawn } from "node:child_process";
import { PassThrough, type Readable, type Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { childEnv } from "./child-env.js";
import { keep } from "./keep-output.js";
import { type RunscContext, runscArgv } from "./runsc.js";

const relayScript = fileURLToPath(new URL("./assets/pty-relay.py", import.meta.url));

/**
 * Runs a `runsc exec` of a `terminal: true` process on a host pseudo-terminal through a small
 * python3 relay (`assets/pty-relay.py`). This runsc makes the caller's own stdio the sandbox
 * process's terminal (or sends a terminal's master over `--console-socket`, which Node cannot
 * receive: it passes no file descriptors over unix sockets), and Node cannot open a PTY. The relay
 * opens one, runs runsc on it, copies bytes both ways and applies resizes, so the process sees a
 * real TTY whose size follows {@link PtyRelay.resize}.
 */
export class PtyRelay {
  /** The terminal's output (stdout and stderr of the process, as a terminal shows them). */
  output!: Readable;
  /** Keystrokes for the terminal. Ending it sends the terminal's EOF character. */
  input!: Writable;
  /** A PTY has no separate stderr: an empty, ended stream. */
  readonly emptyStderr: Readable = new PassThrough().end() as PassThrough;
  #control: Writable | undefined;

  constructor(private readonly size: { cols: number; rows: number }) {}

  /** Starts the relay running `runsc <global flags> <args>` on the PTY. */
  spawn(ctx: RunscContext, args: readonly string[]): ChildProcess {
    const child = spawn(
      "python3",
      [relayScript, String(this.size.cols), String(this.size.rows), ...runscArgv(ctx, args)],
      { stdio: ["pipe", "pipe", "pipe", "pipe"], env: childEnv() },
    );
    this.output = keep(child.stdout as Readable);
    this.input = child.stdin as Writable;
    this.#control = child.stdio[3] as Writable;
    this.#control.on("error", () => undefined);
    // The relay itself prints nothing on stderr but its own failures; drain it so it never blocks.
    child.stderr?.resume();
    return child;
  }

  /** Resizes the terminal. */
  resize(cols: number, rows: number): void {
    this.#control?.write(`${cols} ${rows}\n`);
  }

  /** Releases the relay's control channel. */
  close(): void {
    this.#control?.end();
  }
}
