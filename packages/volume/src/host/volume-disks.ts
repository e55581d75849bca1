import { mkdir, readdir, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { ChalkError, Code, formatBytes } from "@chalk/core";
import { checkDiskBytes, createDisk, isMountPoint, mountDisk, removeDisk } from "@chalk/disk";
import { VOLUME_NAME_PATTERN } from "../names.js";
import { errno } from "./safe-fs.js";

/**
 * Per-volume quotas: a volume created while the store has a quota is a file system of that size of
 * its own (`@chalk/disk`: a sparse file formatted ext4, loop-mounted), mounted on the volume's
 * directory, so that the file system refuses a write past the quota (ENOSPC), whoever writes: the
 * volume API or a sandbox that mounts the volume. The image lives apart from the volumes, in
 * `<dataDir>/disks/<environment>/<name>.img`; the volume's directory holds, on that file system,
 * `meta.json`, `data/` (what sandboxes mount) and `.staging/` (the API's staged writes, which must
 * be on the same file system to be renamed into place).
 */

/** The staging directory inside a quota volume (on its own file system). */
export const VOLUME_STAGING = ".staging";

/** Where a quota volume's disk image is. */
export function volumeDiskImage(dataDir: string, environment: string, name: string): string {
  return join(dataDir, "disks", environment, `${name}.img`);
}

/** Checks a store's quota in bytes (as `@chalk/disk` accepts a size). */
export function checkQuotaBytes(bytes: number): void {
  checkDiskBytes(bytes, "quotaBytes");
}

/**
 * Makes a quota volume's file system and mounts it on `volumeDir` (made here; it must not exist, or
 * be an empty directory a crashed create left), with `data/` and `.staging/` on it. The caller
 * writes `meta.json` last: until then the volume does not exist for readers. Undoes itself on failure.
 */
export async function createVolumeDisk(
  dataDir: string,
  environment: string,
  name: string,
  volumeDir: string,
  bytes: number,
): Promise<void> {
  const image = volumeDiskImage(dataDir, environment, name);
  await mkdir(join(dataDir, "disks", environment), { recursive: true, mode: 0o700 });
  // A create that crashed may have left an image with no volume (no meta.json): it goes.
  await removeDisk(image, volumeDir);
  try {
    await mkdir(volumeDir, { mode: 0o711 });
  } catch (err) {
    if (errno(err) !== "EEXIST" || (await readdir(volumeDir)).length > 0) throw err;
  }
  try {
    await createDisk({ image, mountPoint: volumeDir, bytes, journal: true });
    await mkdir(join(volumeDir, "data"), { mode: 0o755 });
    await mkdir(join(volumeDir, VOLUME_STAGING), { mode: 0o700 });
  } catch (err) {
    await removeVolumeDisk(dataDir, environment, name, volumeDir).catch(() => undefined);
    throw err;
  }
}

/**
 * Unmounts a quota volume's file system and deletes its image and directory. A sandbox that still
 * mounts the volume keeps the detached file system until it stops; then it and its loop device go.
 */
export async function removeVolumeDisk(
  dataDir: string,
  environment: string,
  name: string,
  volumeDir: string,
): Promise<void> {
  await removeDisk(volumeDiskImage(dataDir, environment, name), volumeDir);
  await rmdir(volumeDir).catch((err: unknown) => {
    if (errno(err) !== "ENOENT") throw err;
  });
}

/**
 * Mounts every quota volume's file system that is not mounted (a host reboot unmounted them all),
 * so that a store opened afterwards finds its volumes as they were.
 */
export async function mountVolumeDisks(
  dataDir: string,
  volumeDir: (env: string, name: string) => string,
): Promise<void> {
  const disks = join(dataDir, "disks");
  for (const environment of await readdir(disks).catch(() => [] as string[])) {
    for (const file of await readdir(join(disks, environment)).catch(() => [] as string[])) {
      const name = file.replace(/\.img$/, "");
      if (!file.endsWith(".img") || !VOLUME_NAME_PATTERN.test(name)) continue;
      const dir = volumeDir(environment, name);
      if (isMountPoint(dir)) continue;
      // One that cannot be mounted stays as it is (its volume reads as not found), never deleted.
      await mountDisk(join(disks, environment, file), dir).catch(() => undefined);
    }
  }
}

/**
 * The error for a write that a volume's quota refused (ENOSPC or EDQUOT from its file system):
 * `resource_exhausted`, naming the volume and its quota; anything else as it was.
 */
export function quotaError(err: unknown, volume: string, quotaBytes: number | undefined): unknown {
  const code = errno(err) ?? (err instanceof ChalkError ? errno(err.cause) : undefined);
  if (quotaBytes === undefined || (code !== "ENOSPC" && code !== "EDQUOT")) return err;
  return new ChalkError(
    Code.ResourceExhausted,
    `volume ${JSON.stringify(volume)} is full: its quota is ${formatBytes(quotaBytes)}; nothing was written`,
    { cause: err },
  );
}
