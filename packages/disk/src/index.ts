/**
 * `@chalk/disk`: file systems of a fixed size on this host, for limits the file system itself
 * enforces (a write past the size fails with ENOSPC, in the writer, with nothing polling): a sparse
 * file formatted ext4 and loop-mounted. `@chalk/sandbox/local` puts a sandbox's writable layer on
 * one, `@chalk/volume/host` a volume. Needs root, `mkfs.ext4` (e2fsprogs) and `mount`.
 *
 * @example
 * ```ts
 * import { createDisk, removeDisk } from "@chalk/disk";
 *
 * await createDisk({ image: "/var/lib/chalk/disk.img", mountPoint: "/var/lib/chalk/disk", bytes: 1024 ** 3 });
 * // … files written under /var/lib/chalk/disk count against 1 GiB …
 * await removeDisk("/var/lib/chalk/disk.img", "/var/lib/chalk/disk");
 * ```
 *
 * @packageDocumentation
 */

export {
  checkDiskBytes,
  createDisk,
  type DiskCreateOptions,
  isMountPoint,
  MAX_DISK_BYTES,
  MIN_DISK_BYTES,
  mountDisk,
  removeDisk,
} from "./loop-disk.js";
