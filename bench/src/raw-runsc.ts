/**
 * The raw runsc floors that benchmarks compare against, on a given root filesystem, with the pinned
 * runsc (the one the runtime uses) and its own defaults: its default spec (`runsc spec`, read-only
 * root, no terminal), its default flags but `--network=none`, no overlay mount, no cgroup
 * bookkeeping:
 *
 * - `run()`: `runsc run /bin/true` (create, start, wait, delete);
 * - `exec()`: `runsc exec /bin/true` in a running sandbox;
 * - `stream(bytes)`: `runsc exec … head -c BYTES /dev/zero > /dev/null`, in MiB/s;
 * - `streamPiped(bytes)`: the same into a pipe that this Node process reads and discards.
 *
 * Each call is one sample, so callers interleave them with their own measurements and load from
 * elsewhere on the machine weighs on both alike.
 */
import { execFileSync, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultRunscPath } from "@chalk/sandbox/local";

/** The pinned runsc, as the runtime under test uses it. */
export const RUNSC = defaultRunscPath();

/** Milliseconds taken by `fn`. */
export function timeSync(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

/** runsc by hand on one root filesystem: the floor of what any runtime over it can do. */
export class RawRunsc {
  readonly dir = mkdtempSync(join(tmpdir(), "chalk-bench-runsc-"));
  readonly #root = join(this.dir, "state");
  readonly #once: string;
  #n = 0;

  constructor(readonly rootfs: string) {
    this.#once = this.#bundle(["/bin/true"]);
    this.#runsc("run", "--detach", "--bundle", this.#bundle(["/bin/sleep", "100000"]), "floor-exec");
  }

  #bundle(args: string[]): string {
    const b = mkdtempSync(join(this.dir, "bundle-"));
    execFileSync(RUNSC, ["spec", "--bundle", b, "--", ...args]);
    const config = JSON.parse(readFileSync(join(b, "config.json"), "utf8"));
    config.root = { path: this.rootfs, readonly: true };
    config.process.terminal = false;
    writeFileSync(join(b, "config.json"), JSON.stringify(config));
    return b;
  }

  #runsc(...args: string[]): void {
    execFileSync(RUNSC, ["--root", this.#root, "--network=none", ...args], { stdio: "ignore" });
  }

  /** One `runsc run /bin/true`, in ms. */
  run(): number {
    return timeSync(() => this.#runsc("run", "--bundle", this.#once, `floor-run-${this.#n++}`));
  }

  /** One `runsc exec /bin/true`, in ms. */
  exec(): number {
    return timeSync(() => this.#runsc("exec", "floor-exec", "/bin/true"));
  }

  /** `bytes` of stdout through `runsc exec` into /dev/null, in MiB/s. */
  stream(bytes: number): number {
    const devNull = openSync("/dev/null", "w");
    try {
      const ms = timeSync(() =>
        execFileSync(
          RUNSC,
          [
            "--root",
            this.#root,
            "--network=none",
            "exec",
            "floor-exec",
            "head",
            "-c",
            String(bytes),
            "/dev/zero",
          ],
          { stdio: ["ignore", devNull, "ignore"] },
        ),
      );
      return bytes / 2 ** 20 / (ms / 1000);
    } finally {
      closeSync(devNull);
    }
  }

  /**
   * `bytes` of stdout through `runsc exec` into this process (Node's child stdio, read and
   * discarded), in MiB/s: what any runtime that hands the bytes to Node pays at least.
   */
  streamPiped(bytes: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const t = performance.now();
      const child = spawn(
        RUNSC,
        [
          "--root",
          this.#root,
          "--network=none",
          "exec",
          "floor-exec",
          "head",
          "-c",
          String(bytes),
          "/dev/zero",
        ],
        { stdio: ["ignore", "pipe", "ignore"] },
      );
      let received = 0;
      child.stdout.on("data", (chunk: Buffer) => {
        received += chunk.length;
      });
      child.once("error", reject);
      child.once("close", () =>
        received === bytes
          ? resolve(bytes / 2 ** 20 / ((performance.now() - t) / 1000))
          : reject(new Error(`raw piped stream: ${received} of ${bytes} bytes`)),
      );
    });
  }

  /** Deletes the idle sandbox and the state, with the empty network namespace runsc pinned in it. */
  close(): void {
    try {
      this.#runsc("delete", "--force", "floor-exec");
    } catch {
      // already gone
    }
    try {
      execFileSync("umount", [join(this.#root, "null-netns")], { stdio: "ignore" });
    } catch {
      // not pinned
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
