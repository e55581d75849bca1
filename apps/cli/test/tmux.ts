/**
 * A real terminal for interactive tests: a tmux server on its own socket running a clean bash,
 * keys sent with send-keys, the screen read with capture-pane. Killed (that server only) after use.
 */
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** One tmux session. */
export class Terminal {
  readonly socket = `chalk-cli-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

  #tmux(...args: string[]): string {
    // The tmux server, and so the shell in its pane, gets only what a login would: none of the test
    // runner's variables (CI, NO_COLOR, ...) leak into the terminal under test.
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? "/root",
    };
    if (process.env.TMUX_TMPDIR) env.TMUX_TMPDIR = process.env.TMUX_TMPDIR;
    return execFileSync("tmux", ["-L", this.socket, "-f", "/dev/null", ...args], { encoding: "utf8", env });
  }

  /** Starts bash (no rc files) in a `cols`×`rows` window with exactly `env`, in `dir`. */
  start(env: Record<string, string>, dir: string, cols = 100, rows = 30): void {
    const rc = join(dir, `tmux-${this.socket}.sh`);
    const exports = Object.entries(env)
      .map(([k, v]) => `export ${k}='${v.replace(/'/g, "'\\''")}'`)
      .join("\n");
    writeFileSync(rc, `${exports}\nexport PS1='$ ' TERM=xterm-256color\ncd '${dir}'\n`);
    this.#tmux(
      "new-session",
      "-d",
      "-s",
      "t",
      "-x",
      String(cols),
      "-y",
      String(rows),
      `bash --noprofile --rcfile '${rc}'`,
    );
    this.#tmux("set-option", "-t", "t", "window-size", "manual");
  }

  /** Types text literally. */
  type(text: string): void {
    this.#tmux("send-keys", "-t", "t", "-l", text);
  }

  /** Sends keys by name (`Enter`, `C-c`). */
  keys(...keys: string[]): void {
    this.#tmux("send-keys", "-t", "t", ...keys);
  }

  /** Types a line and presses Enter. */
  line(text: string): void {
    this.type(text);
    this.keys("Enter");
  }

  /** Resizes the window (the program inside gets SIGWINCH). */
  resize(cols: number, rows: number): void {
    this.#tmux("resize-window", "-t", "t", "-x", String(cols), "-y", String(rows));
  }

  /** The visible screen (and scrollback), lines joined. */
  screen(): string {
    return this.#tmux("capture-pane", "-t", "t", "-p", "-J", "-S", "-200");
  }

  /** The screen with its colour escape sequences. */
  screenWithEscapes(): string {
    return this.#tmux("capture-pane", "-t", "t", "-p", "-e", "-J", "-S", "-200");
  }

  /** Waits until the screen matches, or throws with the screen. */
  async waitFor(pattern: RegExp | string, timeoutMs = 120_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.screen();
      if (typeof pattern === "string" ? s.includes(pattern) : pattern.test(s)) return s;
      if (Date.now() > deadline) throw new Error(`terminal never showed ${pattern}; screen:\n${s}`);
      await sleep(100);
    }
  }

  /** Kills this tmux server (and what runs in it) and removes its socket. */
  kill(): void {
    try {
      this.#tmux("kill-server");
    } catch {
      // already gone
    }
    const uid = process.getuid?.() ?? 0;
    rmSync(join(process.env.TMUX_TMPDIR ?? "/tmp", `tmux-${uid}`, this.socket), { force: true });
  }
}
