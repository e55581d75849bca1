import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code } from "@chalk/core";
import { afterEach, describe, expect, test } from "vitest";
import { VolumeStore } from "../src/host/index.js";
import { snapshotTree, spawnTs, tempRoot } from "./helpers.js";

const text = (s: string) => new TextEncoder().encode(s);
const ENV = "default";

const roots: string[] = [];
const stores: VolumeStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
});

async function setup(volume = "vol") {
  const root = await tempRoot();
  roots.push(root);
  const dataDir = join(root, "data");
  const store = await VolumeStore.open({ dataDir });
  stores.push(store);
  await store.create(ENV, volume);
  const hostDir = await store.hostPath(ENV, volume);
  return { root, dataDir, store, hostDir };
}

async function rejection(p: Promise<unknown>): Promise<ChalkError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ChalkError) return err;
    throw err;
  }
  throw new Error("expected a ChalkError");
}

async function readAll(store: VolumeStore, volume: string, path: string): Promise<string> {
  const reader = await store.readFile(ENV, volume, path);
  const parts: Buffer[] = [];
  for await (const c of reader) parts.push(Buffer.from(c));
  return Buffer.concat(parts).toString("utf8");
}

describe("files", () => {
  test("a file put into a volume is read back, listed with its size, and removed", async () => {
    const { store, hostDir } = await setup();
    const info = await store.putFile(ENV, "vol", "inputs/example.txt", text("hello\n"));
    expect(info).toMatchObject({ path: "inputs/example.txt", size: 6, mode: 0o644 });
    expect(await readFile(join(hostDir, "inputs/example.txt"), "utf8")).toBe("hello\n");
    expect(await readAll(store, "vol", "inputs/example.txt")).toBe("hello\n");
    const page = await store.listFiles(ENV, "vol", { prefix: "inputs/" });
    expect(page.items.map((f) => [f.path, f.size])).toEqual([["inputs/example.txt", 6]]);
    await store.removeFile(ENV, "vol", "inputs/example.txt");
    expect((await rejection(store.readFile(ENV, "vol", "inputs/example.txt"))).code).toBe(Code.NotFound);
  });

  test("a reader that opened a file keeps reading the old content while the file is replaced", async () => {
    const { store } = await setup();
    const old = Buffer.alloc(3 * 1024 * 1024, 0x41);
    await store.putFile(ENV, "vol", "f", old);
    const reader = await store.readFile(ENV, "vol", "f");
    await store.putFile(ENV, "vol", "f", Buffer.alloc(5 * 1024 * 1024, 0x42));
    const parts: Buffer[] = [];
    for await (const c of reader) parts.push(Buffer.from(c));
    expect(Buffer.concat(parts).equals(old)).toBe(true);
    expect((await readAll(store, "vol", "f")).length).toBe(5 * 1024 * 1024);
  });

  test("listing by a string prefix matches inside a directory and pages in path order", async () => {
    const { store } = await setup();
    for (const p of [
      "data/abc.txt",
      "data/abd.txt",
      "data/b.txt",
      "data/sub/a.txt",
      "other/a.txt",
      "top.txt",
    ]) {
      await store.putFile(ENV, "vol", p, text(p));
    }
    const ab = await store.listFiles(ENV, "vol", { prefix: "data/ab" });
    expect(ab.items.map((f) => f.path)).toEqual(["data/abc.txt", "data/abd.txt"]);
    const first = await store.listFiles(ENV, "vol", { pageSize: 4 });
    expect(first.items.map((f) => f.path)).toEqual([
      "data/abc.txt",
      "data/abd.txt",
      "data/b.txt",
      "data/sub/a.txt",
    ]);
    const second = await store.listFiles(ENV, "vol", { pageSize: 4, pageToken: first.nextPageToken });
    expect(second.items.map((f) => f.path)).toEqual(["other/a.txt", "top.txt"]);
    expect(second.nextPageToken).toBeUndefined();
  });

  test("contents survive closing and reopening the store, as across a server restart", async () => {
    const { store, dataDir } = await setup();
    await store.putFile(ENV, "vol", "keep.txt", text("still here"));
    await store.close();
    const reopened = await VolumeStore.open({ dataDir });
    stores.push(reopened);
    expect(await readAll(reopened, "vol", "keep.txt")).toBe("still here");
    expect((await reopened.list(ENV)).items.map((v) => v.name)).toEqual(["vol"]);
  });

  test("the same volume name in two environments holds two separate volumes", async () => {
    const { store } = await setup();
    await store.create("staging", "vol");
    await store.putFile(ENV, "vol", "f", text("default"));
    await store.putFile("staging", "vol", "f", text("staging"));
    expect(await readAll(store, "vol", "f")).toBe("default");
    const r = await store.readFile("staging", "vol", "f");
    const parts: Buffer[] = [];
    for await (const c of r) parts.push(Buffer.from(c));
    expect(Buffer.concat(parts).toString()).toBe("staging");
    expect((await rejection(store.get("prod", "vol"))).code).toBe(Code.NotFound);
  });

  test("a stream carrying another size than announced writes nothing", async () => {
    const { store } = await setup();
    await store.putFile(ENV, "vol", "f", text("old"));
    const err = await rejection(store.putFile(ENV, "vol", "f", text("longer than four"), { size: 4 }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.field).toBe("size");
    expect(await readAll(store, "vol", "f")).toBe("old");
  });

  test("a path whose parent is a file fails before any data is read", async () => {
    const { store } = await setup();
    await store.putFile(ENV, "vol", "file", text("x"));
    let pulled = false;
    async function* data() {
      pulled = true;
      yield text("never");
    }
    const err = await rejection(store.putFile(ENV, "vol", "file/child", data()));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(pulled).toBe(false);
  });

  test("deleting a volume removes its files and frees its name", async () => {
    const { store, hostDir } = await setup();
    await store.putFile(ENV, "vol", "a/b/c.txt", text("x"));
    await store.delete(ENV, "vol");
    await expect(stat(hostDir)).rejects.toThrow();
    expect((await rejection(store.get(ENV, "vol"))).code).toBe(Code.NotFound);
    const again = await store.create(ENV, "vol");
    expect(again.created).toBe(true);
    expect((await store.listFiles(ENV, "vol")).items).toEqual([]);
  });

  test("creating a volume twice is already_exists unless existOk", async () => {
    const { store } = await setup();
    expect((await rejection(store.create(ENV, "vol"))).code).toBe(Code.AlreadyExists);
    expect((await store.create(ENV, "vol", { existOk: true })).created).toBe(false);
  });
});

describe("confinement against what a sandbox may plant in a volume", () => {
  test("a relative symlink that stays inside the volume is followed for reads and writes", async () => {
    const { store, hostDir } = await setup();
    await store.putFile(ENV, "vol", "real/file.txt", text("through the link"));
    await symlink("real", join(hostDir, "alias"));
    await symlink("../real/file.txt", join(hostDir, "real-link-dir-sibling"));
    expect(await readAll(store, "vol", "alias/file.txt")).toBe("through the link");
    await store.putFile(ENV, "vol", "alias/new.txt", text("written via alias"));
    expect(await readFile(join(hostDir, "real/new.txt"), "utf8")).toBe("written via alias");
  });

  test("symlinks that point out of the volume are refused and nothing outside is read or written", async () => {
    const { root, store, hostDir } = await setup();
    const outside = join(root, "outside");
    await mkdir(outside);
    await writeFile(join(outside, "secret.txt"), "host secret");
    await symlink(outside, join(hostDir, "abs-dir"));
    await symlink("../../../../outside", join(hostDir, "rel-dir"));
    await symlink(join(outside, "secret.txt"), join(hostDir, "abs-file"));
    await mkdir(join(hostDir, "deep"));
    await symlink("../../x", join(hostDir, "deep", "up-file"));
    const before = await snapshotTree(root, (rel) => rel.startsWith("data/"));
    for (const path of ["abs-dir/secret.txt", "rel-dir/secret.txt", "abs-file", "deep/up-file"]) {
      const err = await rejection(readAll(store, "vol", path));
      expect(err.code, path).toBe(Code.InvalidArgument);
      expect(err.message, path).toMatch(/points out of the volume/);
      expect(err.message).not.toContain("host secret");
    }
    for (const path of ["abs-dir/new.txt", "rel-dir/new.txt", "abs-dir/secret.txt"]) {
      const err = await rejection(store.putFile(ENV, "vol", path, text("pwned")));
      expect(err.code, path).toBe(Code.InvalidArgument);
    }
    expect(await snapshotTree(root, (rel) => rel.startsWith("data/"))).toEqual(before);
  });

  test("writing over a symlink replaces the link and never writes through it", async () => {
    const { root, store, hostDir } = await setup();
    const target = join(root, "target.txt");
    await writeFile(target, "untouched");
    await symlink(target, join(hostDir, "link"));
    await store.putFile(ENV, "vol", "link", text("new content"));
    expect(await readFile(target, "utf8")).toBe("untouched");
    expect(await readFile(join(hostDir, "link"), "utf8")).toBe("new content");
  });

  test("a directory swapped for an outward symlink while writes run never lets a write escape", async () => {
    const { root, store, hostDir } = await setup();
    const outside = join(root, "outside");
    await mkdir(outside);
    await mkdir(join(hostDir, "real"));
    // Another process swaps `real` between a directory and a symlink out of the volume, as fast as
    // it can, like a hostile sandbox racing the server's checks.
    const swapper = spawn(
      "bash",
      [
        "-c",
        `cd "$1" && while :; do mv -T real swap; ln -s "$2" real; rm real; mv -T swap real; done`,
        "swap",
        hostDir,
        outside,
      ],
      { stdio: "ignore" },
    );
    let ok = 0;
    try {
      let refused = 0;
      for (let i = 0; i < 300; i++) {
        try {
          await store.putFile(ENV, "vol", `real/f${i}`, text("inside only"));
          ok += 1;
        } catch (err) {
          if (!(err instanceof ChalkError)) throw err;
          refused += 1;
        }
        await store.readFile(ENV, "vol", `real/f${i}`).then(
          (r) => r.close(),
          () => undefined,
        );
      }
      console.log(`swap race: ${ok} writes landed inside, ${refused} refused`);
      expect(ok + refused).toBe(300);
    } finally {
      swapper.kill("SIGKILL");
      await once(swapper, "exit");
    }
    expect(await readdir(outside)).toEqual([]);
    // Every write that succeeded is a file inside the volume (in whichever directory it landed).
    const files = [...(await snapshotTree(hostDir)).entries()].filter(([, v]) => v.startsWith("file:"));
    expect(files.length).toBe(ok);
  });

  test("a FIFO in the volume is refused instead of blocking the reader", async () => {
    const { store, hostDir } = await setup();
    execFileSync("mkfifo", [join(hostDir, "pipe")]);
    const err = await rejection(store.readFile(ENV, "vol", "pipe"));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toMatch(/not a regular file/);
    const listed = await store.listFiles(ENV, "vol");
    expect(listed.items).toEqual([]);
  });

  test("removing a directory recursively removes links inside it but not what they point to", async () => {
    const { root, store, hostDir } = await setup();
    const outside = join(root, "outside");
    await mkdir(join(outside, "keep"), { recursive: true });
    await writeFile(join(outside, "keep", "file"), "keep me");
    await store.putFile(ENV, "vol", "dir/a.txt", text("a"));
    await symlink(outside, join(hostDir, "dir", "escape"));
    expect((await rejection(store.removeFile(ENV, "vol", "dir"))).code).toBe(Code.FailedPrecondition);
    await store.removeFile(ENV, "vol", "dir", { recursive: true });
    expect(await readdir(hostDir)).toEqual([]);
    expect(await readFile(join(outside, "keep", "file"), "utf8")).toBe("keep me");
  });

  test("deleting a volume does not follow a symlink out of it", async () => {
    const { root, store, hostDir } = await setup();
    const outside = join(root, "outside");
    await mkdir(outside);
    await writeFile(join(outside, "file"), "keep me");
    await symlink(outside, join(hostDir, "escape"));
    await store.delete(ENV, "vol");
    expect(await readFile(join(outside, "file"), "utf8")).toBe("keep me");
  });
});

describe("batches", () => {
  test("a batch is invisible until it is committed, then every file is there", async () => {
    const { store } = await setup();
    await store.putFile(ENV, "vol", "a.txt", text("old a"));
    const batch = await store.batch(ENV, "vol");
    await batch.putFile("a.txt", text("new a"));
    await batch.putFile("dir/b.txt", text("new b"));
    expect(await readAll(store, "vol", "a.txt")).toBe("old a");
    expect((await store.listFiles(ENV, "vol")).items.map((f) => f.path)).toEqual(["a.txt"]);
    const files = await batch.commit();
    expect(files.map((f) => f.path).sort()).toEqual(["a.txt", "dir/b.txt"]);
    expect(await readAll(store, "vol", "a.txt")).toBe("new a");
    expect(await readAll(store, "vol", "dir/b.txt")).toBe("new b");
  });

  test("a discarded batch changes nothing and leaves no staging files", async () => {
    const { store, dataDir } = await setup();
    {
      await using batch = await store.batch(ENV, "vol");
      await batch.putFile("x.txt", text("x"));
    }
    expect((await store.listFiles(ENV, "vol")).items).toEqual([]);
    const tmp = join(dataDir, "tmp");
    for (const owner of await readdir(tmp)) expect(await readdir(join(tmp, owner))).toEqual([]);
  });

  test("a batch that writes a file and a path below it is refused before anything changes", async () => {
    const { store } = await setup();
    const batch = await store.batch(ENV, "vol");
    await batch.putFile("a", text("file"));
    await batch.putFile("a/b", text("below"));
    const err = await rejection(batch.commit());
    expect(err.code).toBe(Code.InvalidArgument);
    expect((await store.listFiles(ENV, "vol")).items).toEqual([]);
  });

  test("a batch whose process died after writing its journal is finished on the next open", async () => {
    const { store, dataDir } = await setup();
    await store.putFile(ENV, "vol", "one.txt", text("old one"));
    await store.close();
    // What a process killed in the middle of a commit leaves: a journal, one file already moved.
    const batchDir = join(dataDir, "tmp", "999999999-1", "batch-dead");
    await mkdir(batchDir, { recursive: true });
    await writeFile(join(batchDir, "1"), "new two");
    await writeFile(join(batchDir, "2"), "new three");
    await writeFile(
      join(batchDir, "journal.json"),
      JSON.stringify({
        environment: ENV,
        volume: "vol",
        files: [
          { staged: "0", components: ["one.txt"] },
          { staged: "1", components: ["two.txt"] },
          { staged: "2", components: ["sub", "three.txt"] },
        ],
      }),
    );
    const reopened = await VolumeStore.open({ dataDir });
    stores.push(reopened);
    expect(await readAll(reopened, "vol", "one.txt")).toBe("old one");
    expect(await readAll(reopened, "vol", "two.txt")).toBe("new two");
    expect(await readAll(reopened, "vol", "sub/three.txt")).toBe("new three");
    expect(await readdir(join(dataDir, "tmp"))).not.toContain("999999999-1");
  });
});

describe("crash safety", () => {
  test("kill -9 in the middle of a large putFile leaves the old content intact and no staging files", async () => {
    const { store, dataDir, hostDir } = await setup();
    const old = Buffer.alloc(2 * 1024 * 1024, 0x41); // "A"
    await store.putFile(ENV, "vol", "big.bin", old);
    await store.close();
    const child = spawnTs(
      join(import.meta.dirname, "fixtures/slow-put.ts"),
      [dataDir, ENV, "vol", "big.bin"],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    try {
      let out = "";
      child.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
      });
      while (!out.includes("writing")) {
        if (child.exitCode !== null) throw new Error(`writer exited early: ${out}`);
        await sleep(20);
      }
      // Make sure the new content is really on its way to disk before the kill.
      const tmp = join(dataDir, "tmp");
      const staged = async () => {
        let total = 0;
        for (const owner of await readdir(tmp)) {
          for (const f of await readdir(join(tmp, owner))) total += (await stat(join(tmp, owner, f))).size;
        }
        return total;
      };
      while ((await staged()) < 8 * 1024 * 1024) await sleep(20);
      child.kill("SIGKILL");
      await once(child, "exit");
      expect(out).not.toContain("done");
      expect((await readFile(join(hostDir, "big.bin"))).equals(old)).toBe(true);
      const reopened = await VolumeStore.open({ dataDir });
      stores.push(reopened);
      expect(await readAll(reopened, "vol", "big.bin")).toBe(old.toString());
      for (const owner of await readdir(tmp)) expect(await readdir(join(tmp, owner))).toEqual([]);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });
});
