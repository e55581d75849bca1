import { mkdir, readdir, rmdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { ChalkError, Code, formatBytes, notFound } from "@chalk/core";
import { checkDiskBytes, createDisk, isMountPoint, mountDisk, removeDisk } from "@chalk/disk";
import { VOLUME_NAME_PATTERN } from "../names.js";
import { syncDir, writeNewJson } from "./file-staging.js";
import { ownTag, tagAlive } from "./process-dir.js";
import { errno, hostError } from "./safe-fs.js";

/**
 * Per-volume quotas: a volume created while the store has a quota is a file system of that size of
 * its own (`@chalk/disk`: a sparse file formatted ext4, loop-mounted), mounted on the volume's
 * directory, so that the file system refuses a write past the quota (ENOSPC), whoever writes: the
 * volume API or a sandbox that mounts the volume. The image lives apart from the volumes, in
 * `<dataDir>/disks/<environment>/<name>.img`; the volume's directory holds, on that file system,
 * `meta.json`, `data/` (what sandboxes mount) and `.staging/` (the API's staged writes, which must
 * be on the same file system to be renamed into place).
 */

/** What a volume's `meta.json` holds. */
export interface VolumeMeta {
  createdAtMs: number;
  /** The volume's quota, when it has a file system of its own. */
  quotaBytes?: number;
}

/** The staging directory inside a quota volume (on its own file system). */
export const VOLUME_STAGING = ".staging";

/** This process's staging directory on a quota volume's own file system (made when missing). */
export async function quotaStagingDir(volumeDir: string): Promise<string> {
  const dir = join(volumeDir, VOLUME_STAGING, ownTag());
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

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

/**
 * Creates a quota volume in `volumeDir`: its file system, then `meta.json` on it last (until then
 * the volume does not exist for readers). already_exists when another create made the directory;
 * nothing is left on failure. The caller holds the volume's lock and syncs the environment's dir.
 */
export async function createQuotaVolume(
  dataDir: string,
  environment: string,
  name: string,
  volumeDir: string,
  meta: VolumeMeta & { quotaBytes: number },
): Promise<void> {
  await createVolumeDisk(dataDir, environment, name, volumeDir, meta.quotaBytes).catch((err: unknown) => {
    throw errno(err) === "EEXIST" || errno(err) === "ENOTEMPTY"
      ? new ChalkError(Code.AlreadyExists, `volume ${JSON.stringify(name)} already exists`, { cause: err })
      : hostError(err, "create volume", name);
  });
  try {
    await writeNewJson(join(volumeDir, "meta.json"), meta, 0o644);
    await syncDir(volumeDir);
  } catch (err) {
    await removeVolumeDisk(dataDir, environment, name, volumeDir).catch(() => undefined);
    throw hostError(err, "create volume", name);
  }
}

/**
 * Deletes a quota volume. A mount point cannot be renamed: its metadata goes first (the name is
 * free at once), then its file system with everything on it. not_found when it is gone already.
 */
export async function deleteQuotaVolume(
  dataDir: string,
  environment: string,
  name: string,
  volumeDir: string,
): Promise<void> {
  await unlink(join(volumeDir, "meta.json")).catch((err: unknown) => {
    throw errno(err) === "ENOENT" ? notFound("volume", name) : hostError(err, "delete volume", name);
  });
  await removeVolumeDisk(dataDir, environment, name, volumeDir);
  await syncDir(join(dataDir, "volumes", environment));
}

/**
 * The staging directories that dead processes left on quota volumes' own file systems
 * (`<volume>/.staging/<tag>`), for the store to roll their batches forward and remove them.
 */
export async function deadQuotaStaging(
  dataDir: string,
  volumeDir: (env: string, name: string) => string,
): Promise<{ staging: string; tag: string }[]> {
  const dead: { staging: string; tag: string }[] = [];
  const volumes = join(dataDir, "volumes");
  for (const environment of await readdir(volumes).catch(() => [] as string[])) {
    for (const name of await readdir(join(volumes, environment)).catch(() => [] as string[])) {
      const staging = join(volumeDir(environment, name), VOLUME_STAGING);
      for (const tag of await readdir(staging).catch(() => [] as string[])) {
        if (!tagAlive(tag)) dead.push({ staging, tag });
      }
    }
  }
  return dead;
}
