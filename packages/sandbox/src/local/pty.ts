import { type ChildProcess, spawn } from "node:child_process";
import { type Duplex, PassThrough, type Readable, type Writable } from "node:stream";
import { childEnv } from "./child-env.js";
import { type RunscContext, runscArgv } from "./runsc.js";
import { requireExecutable } from "./runsc-binary.js";

/**
 * Runs a `runsc exec` of a `terminal: true` process on a host pseudo-terminal through
 * `chalk-pty-relay`, a small static Go program built beside the pinned runsc
 * (`tooling/gvisor/cmd/chalk-pty-relay`). runsc makes the caller's own stdio the sandbox process's
 * terminal when that stdio is one (or sends a terminal's master over `--console-socket`, which Node
 * cannot receive: it passes no file descriptors over unix sockets), and Node cannot open a PTY. The
 * relay opens one, runs runsc on it, copies bytes both ways and applies resizes, so the process
 * sees a real TTY whose size follows {@link PtyRelay.resize}. The host needs no python.
 */
export class PtyRelay {
  /**
   * The terminal's output (stdout and stderr of the process, as a terminal shows them): the relay's
   * stdout pipe, to be read at once (Node discards a child's output nobody listens to).
   */
  output!: Readable;
  /** Keystrokes for the terminal. Ending it sends the terminal's EOF character. */
  input!: Writable;
  /** A PTY has no separate stderr: an empty, ended stream. */
  readonly emptyStderr: Readable = new PassThrough().end() as PassThrough;
  #control: Duplex | undefined;
  /** Resizes sent and not yet acknowledged by the relay, oldest first. */
  readonly #pendingResizes: (() => void)[] = [];

  /** Fails with `unavailable`, naming the setup command, when the relay is not built. */
  constructor(
    private readonly relayPath: string,
    private readonly size: { cols: number; rows: number },
  ) {
    requireExecutable(relayPath, "the PTY relay (chalk-pty-relay)");
  }

  /** Starts the relay running `runsc <global flags> <args>` on the PTY. */
  spawn(ctx: RunscContext, args: readonly string[]): ChildProcess {
    const child = spawn(
      this.relayPath,
      [String(this.size.cols), String(this.size.rows), ...runscArgv(ctx, args)],
      { stdio: ["pipe", "pipe", "pipe", "pipe"], env: childEnv() },
    );
    this.output = child.stdout as Readable;
    this.input = child.stdin as Writable;
    this.#control = child.stdio[3] as Duplex;
    this.#control.on("error", () => undefined);
    // The relay answers each resize with a newline once the terminal has the new size.
    this.#control.on("data", (chunk: Buffer) => {
      for (const byte of chunk) if (byte === 0x0a) this.#pendingResizes.shift()?.();
    });
    this.#control.on("close", () => {
      for (const done of this.#pendingResizes.splice(0)) done();
    });
    // The relay itself prints nothing on stderr but its own failures; drain it so it never blocks.
    child.stderr?.resume();
    return child;
  }

  /**
   * Resizes the terminal; resolves once the relay has applied it, so input written afterwards
   * reaches a process that already sees the new size (input and resizes travel apart).
   */
  resize(cols: number, rows: number): Promise<void> {
    const control = this.#control;
    if (!control || control.destroyed || control.writableEnded) return Promise.resolve();
    return new Promise((resolve) => {
      this.#pendingResizes.push(resolve);
      control.write(`${cols} ${rows}\n`);
    });
  }

  /** Releases the relay's control channel. */
  close(): void {
    this.#control?.end();
  }
}
