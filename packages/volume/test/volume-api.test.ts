import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { VolumeService } from "@chalk/proto/volume/v1";
import { createClient } from "@chalk/rpc";
import { describe, expect } from "vitest";
import { Volume } from "../src/index.js";
import { snapshotTree, test } from "./helpers.js";

const decode = (b: Uint8Array) => new TextDecoder().decode(b);

async function rejection(p: Promise<unknown> | (() => Promise<unknown>)): Promise<ChalkError> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    if (err instanceof ChalkError) return err;
    throw err;
  }
  throw new Error("expected a ChalkError");
}

describe("Volume over gRPC", () => {
  test("a file put through the SDK is read back, listed and removed", async ({ server }) => {
    const vol = new Volume("training-data", { transport: server.defaultTransport });
    await vol.putFile("inputs/example.txt", "hello\n");
    await vol.putFile("inputs/raw.bin", new Uint8Array([0, 1, 2, 255]), { mode: 0o600 });
    expect(decode(await vol.readFile("inputs/example.txt"))).toBe("hello\n");
    expect(await vol.readFile("inputs/raw.bin")).toEqual(new Uint8Array([0, 1, 2, 255]));
    const files = await vol.listFiles("inputs/");
    expect(files.map((f) => [f.path, f.size, f.mode])).toEqual([
      ["inputs/example.txt", 6, 0o644],
      ["inputs/raw.bin", 4, 0o600],
    ]);
    await vol.putFile("empty", "");
    expect(await vol.readFile("empty")).toEqual(new Uint8Array());
    await vol.removeFile("inputs/raw.bin");
    await vol.removeFile("empty");
    expect((await vol.listFiles()).map((f) => f.path)).toEqual(["inputs/example.txt"]);
    expect((await rejection(vol.readFile("inputs/raw.bin"))).code).toBe(Code.NotFound);
    expect((await rejection(vol.removeFile("inputs/raw.bin"))).code).toBe(Code.NotFound);
  });

  test("the first write creates the volume; reading a volume that does not exist is not_found", async ({
    server,
  }) => {
    const vol = new Volume("fresh", { transport: server.defaultTransport });
    const err = await rejection(vol.readFile("x"));
    expect(err.code).toBe(Code.NotFound);
    expect(err.message).toBe('[not_found] volume "fresh" not found');
    await vol.putFile("x", "1");
    expect((await vol.info()).name).toBe("fresh");
    expect((await Volume.list({ transport: server.defaultTransport })).map((v) => v.name)).toEqual(["fresh"]);
    await vol.delete();
    expect(await Volume.list({ transport: server.defaultTransport })).toEqual([]);
    // A handle whose volume was deleted by someone else creates it again on its next write.
    await vol.putFile("y", "2");
    await server.store.delete("default", "fresh");
    await vol.putFile("z", "3");
    expect((await vol.listFiles()).map((f) => f.path)).toEqual(["z"]);
  });

  test("Volume.list pages through many volumes in name order", async ({ server }) => {
    const names = Array.from({ length: 1005 }, (_, i) => `v${String(i).padStart(4, "0")}`);
    for (const n of names) await server.store.create("default", n);
    const listed = await Volume.list({ transport: server.defaultTransport });
    expect(listed.map((v) => v.name)).toEqual(names);
  });

  test("volumes of one environment are invisible from another", async ({ server }) => {
    await new Volume("shared-name", { transport: server.transport("team-a") }).putFile("who", "a");
    const b = new Volume("shared-name", { transport: server.transport("team-b") });
    expect((await rejection(b.readFile("who"))).code).toBe(Code.NotFound);
    await b.putFile("who", "b");
    expect(
      decode(await new Volume("shared-name", { transport: server.transport("team-a") }).readFile("who")),
    ).toBe("a");
  });

  test("an environment header that is not a valid name is refused", async ({ server }) => {
    const vol = new Volume("v", { transport: server.transport("../../etc") });
    const err = await rejection(vol.putFile("x", "y"));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/environment/);
  });

  test("putFileFromPath and readFileToPath stream a local file both ways", async ({ server }) => {
    const local = join(server.root, "upload.bin");
    const data = randomBytes(20 * 1024 * 1024 + 17);
    await writeFile(local, data);
    const vol = new Volume("streams", { transport: server.defaultTransport });
    const info = await vol.putFileFromPath("big/upload.bin", local);
    expect(info.size).toBe(data.byteLength);
    const back = join(server.root, "download.bin");
    await vol.readFileToPath("big/upload.bin", back);
    expect((await readFile(back)).equals(data)).toBe(true);
    const hash = createHash("sha256");
    let chunks = 0;
    for await (const c of vol.readFileStream("big/upload.bin")) {
      hash.update(c);
      chunks += 1;
      expect(c.byteLength).toBeLessThanOrEqual(256 * 1024);
    }
    expect(chunks).toBeGreaterThan(1);
    expect(hash.digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
  });

  test("breaking out of readFileStream cancels the download", async ({ server }) => {
    const vol = new Volume("partial", { transport: server.defaultTransport });
    await vol.putFile("f", new Uint8Array(8 * 1024 * 1024));
    let got = 0;
    for await (const c of vol.readFileStream("f")) {
      got += c.byteLength;
      break;
    }
    expect(got).toBeGreaterThan(0);
    expect(decode(await vol.readFile("f")).length).toBe(8 * 1024 * 1024);
  });

  test("the files of a batch upload appear together and a failing batch writes nothing", async ({
    server,
  }) => {
    const vol = new Volume("batch", { transport: server.defaultTransport });
    const big = join(server.root, "big.bin");
    await writeFile(big, randomBytes(32 * 1024 * 1024));
    const seen = new Set<number>();
    let done = false;
    const upload = vol
      .batchUpload((b) => {
        b.putFile("a.txt", "a");
        b.putFile("b/c.txt", "c");
        b.putFileFromPath("big.bin", big);
      })
      .finally(() => {
        done = true;
      });
    while (!done) seen.add((await vol.listFiles().catch(() => [])).length);
    const files = await upload;
    expect(files.map((f) => f.path).sort()).toEqual(["a.txt", "b/c.txt", "big.bin"]);
    seen.add((await vol.listFiles()).length);
    expect([...seen].every((n) => n === 0 || n === 3)).toBe(true);
    expect(seen.has(3)).toBe(true);

    const err = await rejection(
      vol.batchUpload((b) => {
        b.putFile("later.txt", "never");
        b.putFileFromPath("missing.bin", join(server.root, "does-not-exist"));
      }),
    );
    expect(err.field).toBe("localPath");
    const thrown = await vol
      .batchUpload((b) => {
        b.putFile("later.txt", "never");
        throw new Error("changed my mind");
      })
      .catch((e: Error) => e.message);
    expect(thrown).toBe("changed my mind");
    expect((await vol.listFiles()).map((f) => f.path).sort()).toEqual(["a.txt", "b/c.txt", "big.bin"]);
  });

  test("putDir uploads a local directory tree under a destination", async ({ server }) => {
    const dir = join(server.root, "tree");
    await mkdir(join(dir, "sub", "deeper"), { recursive: true });
    await writeFile(join(dir, "top.txt"), "top");
    await writeFile(join(dir, "sub", "mid.txt"), "mid");
    await writeFile(join(dir, "sub", "deeper", "low.txt"), "low");
    const vol = new Volume("dirs", { transport: server.defaultTransport });
    await vol.putDir(dir, "project");
    expect((await vol.listFiles()).map((f) => f.path)).toEqual([
      "project/sub/deeper/low.txt",
      "project/sub/mid.txt",
      "project/top.txt",
    ]);
    expect(decode(await vol.readFile("project/sub/deeper/low.txt"))).toBe("low");
  });

  test("hostile paths are refused by the server and nothing changes inside or outside the volume", async ({
    server,
  }) => {
    const { root, store } = server;
    await store.create("default", "target");
    const hostDir = await store.hostPath("default", "target");
    const outside = join(root, "outside");
    await mkdir(outside);
    await writeFile(join(outside, "secret.txt"), "host-only content");
    // What a sandbox that mounts the volume read-write could plant.
    await symlink(outside, join(hostDir, "esc-abs"));
    await symlink("../../../../../outside", join(hostDir, "esc-rel"));
    await mkdir(join(hostDir, "deep"));
    await symlink("../..", join(hostDir, "deep", "up"));
    await symlink("loop", join(hostDir, "loop"));
    await symlink(join(outside, "secret.txt"), join(hostDir, "file-link"));
    await symlink("../../../../../outside/secret.txt", join(hostDir, "file-link-rel"));

    const hostile = [
      "",
      "/",
      "//",
      "/etc/passwd",
      "/tmp/x",
      "..",
      "../outside/x",
      "../../../../../../etc/passwd",
      "a/../../outside/x",
      "./../x",
      "a/b/../../..",
      "x\0y",
      "\0",
      "a\\..\\..\\outside",
      "..\\outside",
      "line\nbreak",
      "tab\there",
      "x".repeat(256),
      `${"a/".repeat(2100)}x`,
      "dir/",
      "./",
      "a/./../b",
      "esc-abs/x",
      "esc-abs/sub/deeper/x",
      "esc-rel/x",
      "deep/up/outside/x",
      "loop/x",
    ];
    expect(hostile.length).toBeGreaterThanOrEqual(20);
    const raw = createClient(VolumeService, server.defaultTransport);
    const before = await snapshotTree(root);
    for (const path of hostile) {
      const put = await rejection(
        raw.putFile(
          (async function* () {
            yield { message: { case: "header" as const, value: { volumeName: "target", path } } };
            yield { message: { case: "data" as const, value: new TextEncoder().encode("pwned") } };
          })(),
        ),
      );
      expect(put.code, JSON.stringify(path)).toBe(Code.InvalidArgument);
      expect(put.field ?? put.message, JSON.stringify(path)).toMatch(/path/);
      const get = await rejection(async () => {
        for await (const _ of raw.getFile({ volumeName: "target", path })) {
          // nothing may arrive
        }
      });
      expect(get.code, JSON.stringify(path)).toBe(Code.InvalidArgument);
      expect((await rejection(raw.removeFile({ volumeName: "target", path }))).code).toBe(
        Code.InvalidArgument,
      );
      // The SDK refuses the same paths before sending anything.
      const vol = new Volume("target", { transport: server.defaultTransport });
      if (!path.startsWith("esc") && !path.startsWith("deep") && !path.startsWith("loop")) {
        expect((await rejection(vol.putFile(path, "pwned"))).code).toBe(Code.InvalidArgument);
      }
    }
    // A lone surrogate cannot even be sent (protobuf strings are UTF-8); the SDK names it.
    const lone = await rejection(
      new Volume("target", { transport: server.defaultTransport }).putFile("bad\uD800", "x"),
    );
    expect(lone.message).toMatch(/well-formed/);
    for (const path of ["file-link", "file-link-rel", "esc-abs/secret.txt", "esc-rel/secret.txt"]) {
      const err = await rejection(async () => {
        for await (const _ of raw.getFile({ volumeName: "target", path })) {
          // nothing may arrive
        }
      });
      expect(err.code, path).toBe(Code.InvalidArgument);
      expect(err.message).not.toContain("host-only content");
    }
    for (const prefix of ["../", "/etc", "esc-abs/", "esc-rel/x"]) {
      expect((await rejection(raw.listFiles({ volumeName: "target", prefix }))).code, prefix).toBe(
        Code.InvalidArgument,
      );
    }
    expect(await snapshotTree(root)).toEqual(before);
  });

  test("invalid volume names are refused naming the field", async ({ server }) => {
    expect(() => new Volume("Bad Name", { transport: server.defaultTransport })).toThrow(
      /\[invalid_argument\] name: /,
    );
    const raw = createClient(VolumeService, server.defaultTransport);
    const err = await rejection(raw.createVolume({ name: "../escape" }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/^\[invalid_argument\] name: /);
  });
});
