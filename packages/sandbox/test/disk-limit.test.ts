import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { describe, expect, test } from "vitest";
import { LocalRuntime } from "../src/local/index.js";
import { useLocalRuntime } from "./local-fixture.js";

const fx = useLocalRuntime("chalk-sbx-disk-");
const create = (options: Parameters<typeof fx.create>[0] = {}) => fx.create(options);

/** Loop devices whose backing file is under this test's state directory. */
function loops(): string[] {
  return execFileSync("losetup", ["--list", "--noheadings", "--output", "BACK-FILE"], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes(fx.stateDir));
}

function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .filter((l) => l.split(" ")[1]?.startsWith(dir));
}

describe("the disk limit of a sandbox's writable layer", () => {
  test('dd of 400 MB into /tmp of a memory: "256Mi" sandbox succeeds: /tmp is on disk, not memory', async () => {
    const sandbox = await create({ memory: "256Mi", disk: "1Gi" });
    const r = await sandbox.exec(
      "sh",
      "-c",
      "dd if=/dev/zero of=/tmp/big bs=1M count=400 2>&1; ls -l /tmp/big",
    );
    expect(r).toMatchObject({ exitCode: 0, oomKilled: false });
    expect(r.stdoutText).toContain("419430400");
    // The sandbox is alive and the file is in its writable layer on the host, on its disk.
    expect((await sandbox.info()).state).toBe("running");
    const upper = join(fx.stateDir, "sandboxes", sandbox.id, "disk", "upper", "tmp", "big");
    expect(existsSync(upper)).toBe(true);
  });

  test("past the disk limit a write fails with ENOSPC, in /tmp and in the root filesystem", async () => {
    const sandbox = await create({ memory: "256Mi", disk: "300Mi" });
    const tmp = await sandbox.exec("sh", "-c", "dd if=/dev/zero of=/tmp/big bs=1M count=400 2>&1");
    expect(tmp.exitCode).not.toBe(0);
    expect(tmp.stdoutText).toMatch(/No space left on device/);
    await sandbox.exec("rm", "/tmp/big");
    const root = await sandbox.exec("sh", "-c", "dd if=/dev/zero of=/root/big bs=1M count=400 2>&1");
    expect(root.stdoutText).toMatch(/No space left on device/);
    // The sandbox sees its limit as the size of its root filesystem.
    const df = await sandbox.exec("df", "-k", "/");
    const size = Number(df.stdoutText.split("\n")[1]?.split(/\s+/)[1]);
    expect(size).toBeGreaterThan(250 * 1024);
    expect(size).toBeLessThanOrEqual(300 * 1024);
    expect((await sandbox.info()).resources.disk).toBe("300Mi");
  });

  test("mounts do not count against it", async () => {
    const host = await mkdtemp(join(tmpdir(), "chalk-disk-mount-"));
    try {
      const sandbox = await create({ disk: "32Mi", mounts: [{ source: host, target: "/data" }] });
      const r = await sandbox.exec("sh", "-c", "dd if=/dev/zero of=/data/big bs=1M count=64 2>&1");
      expect(r.exitCode).toBe(0);
    } finally {
      await rm(host, { recursive: true, force: true });
    }
  });

  test("a second runtime on the same state reattaches: files on the disk are there and stop cleans up", async () => {
    const sandbox = await create({ disk: "64Mi" });
    await sandbox.exec("sh", "-c", "echo kept > /root/kept");
    expect(loops().length).toBeGreaterThan(0);
    const again = await new LocalRuntime({ stateDir: fx.stateDir }).get(sandbox.id);
    expect((await again.exec("cat", "/root/kept")).stdoutText).toBe("kept\n");
    await again.stop();
    const dir = join(fx.stateDir, "sandboxes", sandbox.id);
    expect(mountsUnder(dir)).toEqual([]);
    expect(loops().filter((l) => l.includes(sandbox.id))).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });

  test("stop removes the loop device, the mounts and the sparse file of every disk", async () => {
    const sandboxes = await Promise.all([create({ disk: "64Mi" }), create({ disk: "64Mi", network: true })]);
    for (const s of sandboxes) await s.stop();
    for (const s of sandboxes) {
      expect(loops().filter((l) => l.includes(s.id))).toEqual([]);
      expect(mountsUnder(join(fx.stateDir, "sandboxes", s.id))).toEqual([]);
    }
  });

  test("bad disk limits are refused before any work, naming the field", async () => {
    const before = loops();
    for (const disk of ["lots", " 1Gi", "1Mi", "-1Gi", "100Ti"]) {
      const err = (await create({ disk }).catch((e) => e)) as ChalkError;
      expect(err).toBeInstanceOf(ChalkError);
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.message).toMatch(/^\[invalid_argument\] disk: /);
    }
    const owned = await mkdtemp(join(tmpdir(), "chalk-disk-owned-"));
    try {
      const err = (await create({ disk: "1Gi", writableLayerDir: join(owned, "upper") }).catch(
        (e) => e,
      )) as ChalkError;
      expect(err.code).toBe(Code.InvalidArgument);
    } finally {
      await rm(owned, { recursive: true, force: true });
    }
    expect(loops()).toEqual(before);
  });
});
