import { type ChildProcess, spawn } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, type Readable, type Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { keep } from "./keep-output.js";
import { type RunscContext, runscArgv } from "./runsc.js";

const relayScript = fileURLToPath(new URL("./assets/pty-relay.py", import.meta.url));
let counter = 0;

/** What the PTY process runs. */
export interface PtyProcessSpec {
  argv: readonly string[];
  env: Record<string, string>;
  cwd: string;
}

/**
 * Runs a `runsc exec` on a host pseudo-terminal through a small python3 relay (`assets/pty-relay.py`):
 * this runsc makes the caller's own stdio the sandbox process's terminal, and Node cannot open a
 * PTY. The relay copies bytes both ways and applies resizes, so the sandbox sees a real TTY whose
 * size follows {@link PtyRelay.resize}.
 */
export class PtyRelay {
  /** The terminal's output (stdout and stderr of the process, as a terminal shows them). */
  output!: Readable;
  /** Keystrokes for the terminal. Ending it sends the terminal's EOF character. */
  input!: Writable;
  /** A PTY has no separate stderr: an empty, ended stream. */
  readonly emptyStderr: Readable = new PassThrough().end() as PassThrough;
  #control: Writable | undefined;

  private constructor(
    readonly processFile: string,
    private readonly size: { cols: number; rows: number },
  ) {}

  /** Writes the OCI process spec (terminal on) for the exec, from the sandbox's own. */
  static async create(
    sandboxDir: string,
    size: { cols: number; rows: number },
    p: PtyProcessSpec,
  ): Promise<PtyRelay> {
    const config = JSON.parse(await readFile(join(sandboxDir, "bundle", "config.json"), "utf8")) as {
      process: { env: string[] } & Record<string, unknown>;
    };
    const env = new Map(
      config.process.env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]),
    );
    env.set("TERM", env.get("TERM") ?? "xterm-256color");
    for (const [k, v] of Object.entries(p.env)) env.set(k, v);
    const spec = {
      ...config.process,
      terminal: true,
      args: [...p.argv],
      cwd: p.cwd,
      env: [...env].map(([k, v]) => `${k}=${v}`),
    };
    const file = join(sandboxDir, `pty-${process.pid}-${++counter}.json`);
    await writeFile(file, JSON.stringify(spec), { mode: 0o600 });
    return new PtyRelay(file, size);
  }

  /** Starts the relay running `runsc <global flags> <args>` on the PTY. */
  spawn(ctx: RunscContext, args: readonly string[]): ChildProcess {
    const child = spawn(
      "python3",
      [relayScript, String(this.size.cols), String(this.size.rows), ...runscArgv(ctx, args)],
      { stdio: ["pipe", "pipe", "pipe", "pipe"] },
    );
    this.output = keep(child.stdout as Readable);
    this.input = child.stdin as Writable;
    this.#control = child.stdio[3] as Writable;
    this.#control.on("error", () => undefined);
    // The relay itself prints nothing on stderr; drain it so it can never block.
    child.stderr?.resume();
    return child;
  }

  /** Resizes the terminal. */
  resize(cols: number, rows: number): void {
    this.#control?.write(`${cols} ${rows}\n`);
  }

  /** Releases the relay's control channel and the process spec file. */
  close(): void {
    this.#control?.end();
    void rm(this.processFile, { force: true });
  }
}
