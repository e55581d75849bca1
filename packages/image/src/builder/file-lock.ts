import { spawn } from "node:child_process";
import { once } from "node:events";
import { ChalkError, Code } from "@chalk/core";

/** A held lock; {@link FileLock.release} gives it up. */
export interface FileLock {
  release(): Promise<void>;
}

/**
 * Takes an exclusive `flock(2)` lock on `path` (created when missing), waiting while another
 * process holds it. Node has no flock, so a small `flock(1)` child holds the lock for us: it keeps
 * it until its stdin closes, which also happens when this process dies, so a crashed holder never
 * leaves the lock behind. Aborting `signal` while waiting stops the wait.
 */
export async function acquireFileLock(path: string, signal?: AbortSignal): Promise<FileLock> {
  signal?.throwIfAborted();
  const child = spawn("flock", ["--exclusive", path, "sh", "-c", "echo locked; exec cat >/dev/null"], {
    stdio: ["pipe", "pipe", "pipe"],
    // Never the server's environment (its token): the lock holder may outlive a killed server.
    env: { PATH: process.env.PATH || "/usr/sbin:/usr/bin:/sbin:/bin" },
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const exited = once(child, "close");
  const onAbort = () => child.kill("SIGKILL");
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const locked = new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding("utf8").once("data", () => resolve());
      child.once("error", reject);
      child.once("close", () => {
        reject(
          signal?.aborted
            ? ChalkError.from(signal.reason, Code.Canceled)
            : new ChalkError(
                Code.Unavailable,
                `flock ${path}: ${stderr.trim() || "exited before taking the lock"}`,
              ),
        );
      });
    });
    await locked;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      child.stdin.end();
      await exited;
    },
  };
}
