import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { VolumeService } from "@chalk/proto/volume/v1";
import { addService, createTransport, listen } from "@chalk/rpc";
import { LocalRuntime } from "@chalk/sandbox/local";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { VolumeStore, volumeServiceImpl } from "../src/host/index.js";
import { Volume } from "../src/index.js";

const MiB = 1024 * 1024;
const QUOTA = 32 * MiB;
let root: string;
let dataDir: string;
let store: VolumeStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "chalk-volume-quota-"));
  dataDir = join(root, "data");
  store = await VolumeStore.open({ dataDir, quotaBytes: QUOTA });
});

afterEach(async () => {
  // Every volume goes through the store, which unmounts its file system.
  for (const env of readdirSync(join(dataDir, "volumes"))) {
    for (const v of (await store.list(env, { pageSize: 1000 })).items) await store.delete(env, v.name);
  }
  await store.close();
  await rm(root, { recursive: true, force: true });
});

/** Loop devices and mounts backed by or under this test's data directory. */
function leftovers(): string[] {
  const loops = execFileSync("losetup", ["--list", "--noheadings", "--output", "BACK-FILE"], {
    encoding: "utf8",
  })
    .split("\n")
    .filter((l) => l.includes(root));
  const mounts = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .filter((l) => l.split(" ")[1]?.startsWith(root));
  return [...loops, ...mounts];
}

async function errorOf(p: Promise<unknown>): Promise<ChalkError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ChalkError);
  return err as ChalkError;
}

describe("a volume's quota, enforced by its own file system", () => {
  test("a put within the quota works; one past it is resource_exhausted naming the volume, and writes nothing", async () => {
    await store.create("default", "q");
    await store.putFile("default", "q", "small.bin", new Uint8Array(8 * MiB));
    const err = await errorOf(store.putFile("default", "q", "big.bin", new Uint8Array(40 * MiB)));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.message).toContain('volume "q" is full');
    expect(err.message).toContain("32 MiB");
    const files = (await store.listFiles("default", "q")).items.map((f) => f.path);
    expect(files).toEqual(["small.bin"]);
    // The failed put's staged bytes are gone: the space is there again.
    await store.putFile("default", "q", "again.bin", new Uint8Array(16 * MiB));
  });

  test("through the volume API the client gets resource_exhausted too", async () => {
    const server = await listen({
      address: "127.0.0.1:0",
      register: (s) => addService(s, VolumeService, volumeServiceImpl(store)),
    });
    const { address } = server;
    const transport = createTransport({ address, environment: "default" });
    try {
      const vol = new Volume("api-q", { transport });
      await vol.create();
      const err = await errorOf(vol.putFile("big.bin", new Uint8Array(40 * MiB)));
      expect(err.code).toBe(Code.ResourceExhausted);
      await vol.putFile("fits.txt", "fits\n");
      expect(new TextDecoder().decode(await vol.readFile("fits.txt"))).toBe("fits\n");
    } finally {
      transport.close();
      server.close();
    }
  });

  test("a batch past the quota is resource_exhausted and commits nothing", async () => {
    await store.create("default", "b");
    const batch = await store.batch("default", "b");
    await batch.putFile("one.bin", new Uint8Array(20 * MiB));
    const err = await errorOf(batch.putFile("two.bin", new Uint8Array(20 * MiB)));
    expect(err.code).toBe(Code.ResourceExhausted);
    await batch.abort();
    expect((await store.listFiles("default", "b")).items).toEqual([]);
  });

  test("a sandbox that mounts the volume gets ENOSPC past the quota", async () => {
    await store.create("default", "s");
    const stateDir = await mkdtemp(join(tmpdir(), "chalk-volume-quota-sbx-"));
    const runtime = new LocalRuntime({ stateDir });
    const rootfs = execFileSync("bash", [join(import.meta.dirname, "../../../tooling/scripts/rootfs.sh")], {
      encoding: "utf8",
    }).trim();
    const sandbox = await runtime.create({
      rootfs,
      mounts: [{ source: await store.hostPath("default", "s"), target: "/data" }],
    });
    try {
      const r = await sandbox.exec("sh", "-c", "dd if=/dev/zero of=/data/big bs=1M count=64 2>&1");
      expect(r.exitCode).not.toBe(0);
      expect(r.stdoutText).toMatch(/No space left on device/);
    } finally {
      await sandbox.stop();
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  test("delete removes the file system, its loop device and image; the name is free again", async () => {
    await store.create("default", "d");
    await store.putFile("default", "d", "x", new Uint8Array(MiB));
    expect(leftovers().length).toBeGreaterThan(0);
    await store.delete("default", "d");
    expect(leftovers()).toEqual([]);
    expect(existsSync(join(dataDir, "disks", "default", "d.img"))).toBe(false);
    await store.create("default", "d");
    expect((await store.listFiles("default", "d")).items).toEqual([]);
  });

  test("after a host reboot (its file system unmounted) a store opened again finds the volume as it was", async () => {
    await store.create("default", "r");
    await store.putFile("default", "r", "kept.txt", new TextEncoder().encode("kept\n"));
    await store.close();
    execFileSync("umount", [join(dataDir, "volumes", "default", "r")]);
    store = await VolumeStore.open({ dataDir, quotaBytes: QUOTA });
    const reader = await store.readFile("default", "r", "kept.txt");
    const chunks: Uint8Array[] = [];
    for await (const c of reader) chunks.push(c);
    expect(Buffer.concat(chunks).toString()).toBe("kept\n");
  });

  test("a volume made before the store had a quota keeps working without one", async () => {
    await store.close();
    const plain = await VolumeStore.open({ dataDir });
    await plain.create("default", "old");
    await plain.close();
    store = await VolumeStore.open({ dataDir, quotaBytes: QUOTA });
    await store.putFile("default", "old", "big.bin", new Uint8Array(40 * MiB));
    expect((await store.listFiles("default", "old")).items.map((f) => f.path)).toEqual(["big.bin"]);
  });

  test("a quota outside 16 MiB to 16 TiB is refused when the store opens", async () => {
    for (const quotaBytes of [0, MiB, 1.5, 2 ** 60]) {
      const err = await errorOf(VolumeStore.open({ dataDir: join(root, "other"), quotaBytes }));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.message).toContain("quotaBytes");
    }
  });
});
