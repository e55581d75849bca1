import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createDisk, isMountPoint, MIN_DISK_BYTES, mountDisk, removeDisk } from "../src/index.js";

const MiB = 1024 * 1024;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "chalk-disk-"));
});

afterAll(async () => {
  for (const name of ["a", "b", "c", "d"]) {
    await removeDisk(join(dir, `${name}.img`), join(dir, name)).catch(() => undefined);
  }
  await rm(dir, { recursive: true, force: true });
});

/** Loop devices whose backing file is `image`. */
function loopsOf(image: string): string[] {
  return execFileSync("losetup", ["--list", "--noheadings", "--output", "NAME,BACK-FILE"], {
    encoding: "utf8",
  })
    .split("\n")
    .filter((l) => l.trim().endsWith(image) || l.includes(`${image} (deleted)`));
}

/** Writes 1 MiB chunks to `path` until the file system refuses; returns the bytes written and the error. */
async function fill(path: string): Promise<{ written: number; code: string | undefined }> {
  const fh = await open(path, "w");
  const chunk = Buffer.alloc(MiB, 0x61);
  let written = 0;
  try {
    for (;;) {
      const { bytesWritten } = await fh.write(chunk);
      written += bytesWritten;
      if (bytesWritten < chunk.byteLength) continue;
    }
  } catch (err) {
    return { written, code: (err as NodeJS.ErrnoException).code };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

describe("loop disks", () => {
  test("a write past the size fails with ENOSPC, and the image takes host disk only for what was written", async () => {
    const image = join(dir, "a.img");
    const mnt = join(dir, "a");
    await createDisk({ image, mountPoint: mnt, bytes: 64 * MiB });
    expect(isMountPoint(mnt)).toBe(true);
    expect(statSync(image).size).toBe(64 * MiB);
    // Sparse: far less than its size is allocated on the host while it is empty.
    expect(statSync(image).blocks * 512).toBeLessThan(16 * MiB);
    const { written, code } = await fill(join(mnt, "big"));
    expect(code).toBe("ENOSPC");
    expect(written).toBeGreaterThan(56 * MiB);
    expect(written).toBeLessThanOrEqual(64 * MiB);
    // Deleting the file gives the host its blocks back (mounted with discard).
    await rm(join(mnt, "big"));
    execFileSync("sync");
    expect(statSync(image).blocks * 512).toBeLessThan(24 * MiB);
    await removeDisk(image, mnt);
    expect(isMountPoint(mnt)).toBe(false);
    expect(existsSync(image)).toBe(false);
    expect(loopsOf(image)).toEqual([]);
  });

  test("a journalled disk keeps its files across an unmount and a new mount (a host reboot)", async () => {
    const image = join(dir, "b.img");
    const mnt = join(dir, "b");
    await createDisk({ image, mountPoint: mnt, bytes: 32 * MiB, journal: true });
    await writeFile(join(mnt, "kept"), "still here\n");
    execFileSync("umount", [mnt]);
    expect(isMountPoint(mnt)).toBe(false);
    await mountDisk(image, mnt);
    await mountDisk(image, mnt); // mounted already: nothing happens
    expect(execFileSync("cat", [join(mnt, "kept")], { encoding: "utf8" })).toBe("still here\n");
    expect(execFileSync("findmnt", ["-n", "-o", "OPTIONS", mnt], { encoding: "utf8" })).toMatch(/nodev.*/);
    await removeDisk(image, mnt);
    expect(loopsOf(image)).toEqual([]);
  });

  test("a disk in use is detached at once and its loop device goes with the last holder", async () => {
    const image = join(dir, "c.img");
    const mnt = join(dir, "c");
    await createDisk({ image, mountPoint: mnt, bytes: 32 * MiB });
    const held = await open(join(mnt, "open-file"), "w");
    await removeDisk(image, mnt);
    expect(isMountPoint(mnt)).toBe(false);
    expect(existsSync(image)).toBe(false);
    await held.close();
    for (let i = 0; i < 100 && loopsOf(image).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(loopsOf(image)).toEqual([]);
  });

  test("sizes outside the accepted range are refused before anything is made", async () => {
    const image = join(dir, "d.img");
    for (const bytes of [0, MIN_DISK_BYTES - 1, 1.5, Number.NaN]) {
      const err = await createDisk({ image, mountPoint: join(dir, "d"), bytes }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ChalkError);
      expect((err as ChalkError).code).toBe(Code.InvalidArgument);
      expect(existsSync(image)).toBe(false);
    }
  });

  test("removing a disk that was never made, or twice, does nothing", async () => {
    await removeDisk(join(dir, "none.img"), join(dir, "none"));
    await removeDisk(join(dir, "none.img"), join(dir, "none"));
  });
});
