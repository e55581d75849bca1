import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, open, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code, formatBytes } from "@chalk/core";

/** Smallest disk accepted: ext4's own metadata needs a few MiB. */
export const MIN_DISK_BYTES = 16 * 1024 * 1024;
/** Largest disk accepted (ext4 with 4 KiB blocks goes far beyond; this bounds mistakes). */
export const MAX_DISK_BYTES = 16 * 1024 ** 4;

/** Options for {@link createDisk}. */
export interface DiskCreateOptions {
  /** Host path of the sparse file that holds the file system; must not exist. */
  image: string;
  /** Directory the file system is mounted on; created when missing. */
  mountPoint: string;
  /** Size of the file system in bytes: the most its files can take, metadata included. */
  bytes: number;
  /**
   * Keep an ext4 journal: the file system survives a host crash consistent (volumes, whose writes
   * are fsynced). Without one, creation is faster and nothing is written twice (writable layers,
   * which do not outlive their sandbox). Default false.
   */
  journal?: boolean;
}

/** A host child's environment: PATH only. */
const env = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" };

function run(cmd: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { env }, (err, _out, stderr) => {
      if (!err) return resolve();
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        return reject(
          new ChalkError(
            Code.Unavailable,
            `${cmd} is not installed; disk limits need e2fsprogs and mount (\`bash tooling/scripts/setup.sh\` installs them)`,
            { cause: err },
          ),
        );
      }
      const text = stderr.trim() || err.message;
      const code = /no space left/i.test(text) ? Code.ResourceExhausted : Code.Internal;
      reject(new ChalkError(code, `${cmd} ${args.join(" ")}: ${text}`, { cause: err }));
    }),
  );
}

/** Checks a disk size in bytes: an integer from {@link MIN_DISK_BYTES} to {@link MAX_DISK_BYTES}. */
export function checkDiskBytes(bytes: number, field = "disk"): void {
  if (!Number.isSafeInteger(bytes) || bytes < MIN_DISK_BYTES || bytes > MAX_DISK_BYTES) {
    throw new ChalkError(
      Code.InvalidArgument,
      `${field}: ${bytes} bytes is not a disk size; accepted: ${formatBytes(MIN_DISK_BYTES)} to ${formatBytes(MAX_DISK_BYTES)}`,
      { field },
    );
  }
}

/**
 * Makes a file system of exactly `bytes` and mounts it: a sparse file (it takes host disk only as
 * files are written, and gives it back as they are deleted: mounted with `discard`, the loop device
 * punches holes in it), formatted ext4 with no reserved blocks, loop-mounted `nodev,nosuid`. The
 * limit is the file system's size, so a write past it fails with ENOSPC at once, in the writer,
 * with nothing polling. The loop device is released when the file system is unmounted
 * ({@link removeDisk}): `mount -o loop` sets it to clear itself.
 *
 * Cost, measured on this 2-core machine under load (README of this package): about 100 ms, most
 * of it `mkfs.ext4` and the mount.
 *
 * Fails halfway without leaving anything: a partly made disk is removed.
 */
export async function createDisk(o: DiskCreateOptions): Promise<void> {
  checkDiskBytes(o.bytes);
  const fh = await open(o.image, "wx", 0o600);
  try {
    await fh.truncate(o.bytes);
  } finally {
    await fh.close();
  }
  try {
    await run("mkfs.ext4", [
      "-q",
      "-F",
      "-m",
      "0",
      ...(o.journal
        ? ["-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard"]
        : ["-O", "^has_journal", "-E", "lazy_itable_init=1,nodiscard"]),
      o.image,
    ]);
    await mountDisk(o.image, o.mountPoint);
  } catch (err) {
    await rm(o.image, { force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * Mounts an existing disk image on `mountPoint` (created when missing) unless something is mounted
 * there already: for a disk whose mount went with a host reboot.
 */
export async function mountDisk(image: string, mountPoint: string): Promise<void> {
  await mkdir(mountPoint, { recursive: true });
  if (isMountPoint(mountPoint)) return;
  await run("mount", ["-t", "ext4", "-o", "loop,discard,nodev,nosuid", image, mountPoint]);
}

/**
 * Unmounts a disk and deletes its image; safe to call twice, or for a disk that was never made.
 * When something still holds the file system (a sandbox that bind-mounted it), it is detached at
 * once and goes, with its loop device, when the last holder does.
 */
export async function removeDisk(image: string, mountPoint: string): Promise<void> {
  for (let attempt = 0; isMountPoint(mountPoint); attempt++) {
    if (attempt >= 10) {
      await run("umount", ["-l", mountPoint]);
      break;
    }
    await run("umount", [mountPoint]).catch(async () => sleep(20));
  }
  await rm(image, { force: true });
}

/** Decodes the octal escapes (`\040` for a space) of a /proc/self/mountinfo path. */
function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** Whether a file system is mounted on `path` (an absolute path without symlinks). */
export function isMountPoint(path: string): boolean {
  const target = path.replace(/\/+$/, "") || "/";
  const info = readFileSync("/proc/self/mountinfo", "utf8");
  return info.split("\n").some((line) => {
    const mountPoint = line.split(" ")[4];
    return mountPoint !== undefined && unescapeMountPath(mountPoint) === target;
  });
}
