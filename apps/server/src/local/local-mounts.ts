import { spawn } from "node:child_process";
import { mkdir, readdir, readFile, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import type { SandboxMount } from "@chalk/sandbox";
import type { VolumeStore } from "@chalk/volume/host";
import type { VolumeMountRequest } from "../backend/compute-backend.js";

/** Runs `mount` or `umount` with a minimal environment, optionally handing it one file descriptor as fd 3. */
function run(cmd: string, args: string[], fd?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ["ignore", "ignore", "pipe", ...(fd === undefined ? [] : [fd])],
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
    });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0
        ? resolve()
        : reject(new ChalkError(Code.Internal, `${cmd} failed: ${stderr.trim() || `exit ${code}`}`)),
    );
  });
}

/** Mount points below `dir`, deepest first, from this process's mount table. */
async function mountsBelow(dir: string): Promise<string[]> {
  const table = await readFile("/proc/self/mountinfo", "utf8").catch(() => "");
  return table
    .split("\n")
    .map((l) =>
      l.split(" ")[4]?.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))),
    )
    .filter((p): p is string => p?.startsWith(`${dir}/`) === true)
    .sort((a, b) => b.length - a.length);
}

/**
 * Materialises a container's volume mounts on this machine, safely against what sandboxes write
 * into volumes (symlinks to `/etc`, to the data dir, swapped in while a run proceeds):
 *
 * 1. One function resolves every (volume, subpath): {@link VolumeStore.openMountSource} walks it
 *    from the volume's root with `O_NOFOLLOW` on every name and refuses a path that is, or passes
 *    through, a symlink. The open handle pins the directory that was checked.
 * 2. The pinned directory is bind-mounted from `/proc/self/fd/N` (handed to `mount` as its fd 3,
 *    with `--no-canonicalize`, so no path is resolved again) onto a private staging directory,
 *    `<stagingDir>/<container id>/<n>`, which is what runsc mounts.
 * 3. Once the sandbox runs (its gofer holds its own copies of the mounts), the staging mounts are
 *    removed again ({@link LocalMounts.release}): nothing stays mounted on the host, and a data
 *    dir removed with the server's sandboxes cannot reach into a volume through one.
 *
 * A restore from a checkpoint (pause and resume, later) needs the mounts again and must pin anew.
 */
export class LocalMounts {
  constructor(
    private readonly volumes: VolumeStore,
    readonly stagingDir: string,
  ) {}

  /** Removes staging mounts a previous server left behind (it died while creating a container). */
  async recover(): Promise<void> {
    for (const id of await readdir(this.stagingDir).catch(() => [] as string[])) await this.release(id);
  }

  /**
   * Pins and stages a container's volume mounts; returns the sandbox mounts. On failure nothing
   * stays mounted: a path through a symlink is failed_precondition naming the field's path.
   */
  async prepare(
    id: string,
    environment: string,
    mounts: readonly VolumeMountRequest[],
  ): Promise<SandboxMount[]> {
    const dir = join(this.stagingDir, id);
    const out: SandboxMount[] = [];
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      for (const [n, m] of mounts.entries()) {
        const pinned = await this.volumes.openMountSource(environment, m.volume, m.subPath);
        try {
          const target = join(dir, String(n));
          await mkdir(target, { mode: 0o700 });
          await run("mount", ["--no-canonicalize", "--bind", "/proc/self/fd/3", target], pinned.fd);
          out.push({ source: target, target: m.target, readOnly: m.readOnly });
        } finally {
          await pinned.close();
        }
      }
      return out;
    } catch (err) {
      await this.release(id);
      const e = ChalkError.from(err);
      throw e.code === Code.NotFound || e.code === Code.FailedPrecondition
        ? new ChalkError(e.code, `volume mount: ${e.rawMessage}`, { cause: err })
        : e;
    }
  }

  /**
   * Removes a container's staging mounts and their directories. Idempotent. Directories are removed
   * one by one with `rmdir`, never recursively: a staging directory that is still a mount point
   * cannot take a volume's files with it.
   */
  async release(id: string): Promise<void> {
    const dir = join(this.stagingDir, id);
    for (const m of await mountsBelow(dir)) {
      await run("umount", ["--no-canonicalize", m]).catch(() =>
        run("umount", ["--no-canonicalize", "--lazy", m]),
      );
    }
    for (const n of await readdir(dir).catch(() => [] as string[]))
      await rmdir(join(dir, n)).catch(() => undefined);
    await rmdir(dir).catch(() => undefined);
  }
}
