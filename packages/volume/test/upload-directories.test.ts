/**
 * Directories in uploads (issue 10, "Files and /tmp"): `putDir` and `batchUpload` reproduce the
 * local tree, empty directories and directory permission bits included, over real gRPC into a real
 * store; and a batch's directory entry is resolved inside the volume without following symlinks.
 */
import { chmod, mkdir, mkdtemp, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { VolumeService } from "@chalk/proto/volume/v1";
import { createClient } from "@chalk/rpc";
import fc from "fast-check";
import { describe, expect } from "vitest";
import { Volume } from "../src/index.js";
import { localDirEntries } from "../src/upload-source.js";
import { snapshotTree, test } from "./helpers.js";

async function rejection(p: Promise<unknown>): Promise<ChalkError> {
  try {
    await p;
  } catch (err) {
    return ChalkError.from(err);
  }
  throw new Error("expected a rejection");
}

describe("putDir and batchUpload reproduce directories", () => {
  test("empty directories arrive, nested ones too, with their modes", async ({ server }) => {
    const local = join(server.root, "tree");
    await mkdir(join(local, "empty", "inner-empty"), { recursive: true });
    await mkdir(join(local, "private"), { recursive: true });
    await writeFile(join(local, "private", "f"), "f");
    await chmod(join(local, "private"), 0o700);
    await chmod(join(local, "empty", "inner-empty"), 0o750);
    const vol = new Volume("dirs", { transport: server.defaultTransport });
    const files = await vol.batchUpload((b) => b.putDir(local, "app"));
    expect(files.map((f) => f.path)).toEqual(["app/private/f"]);
    const host = await server.store.hostPath("default", "dirs");
    expect([...(await snapshotTree(host)).entries()]).toEqual([
      ["app", "dir"],
      ["app/empty", "dir"],
      ["app/empty/inner-empty", "dir"],
      ["app/private", "dir"],
      ["app/private/f", `file:${Buffer.from("f").toString("base64")}`],
    ]);
    expect((await stat(join(host, "app/empty/inner-empty"))).mode & 0o777).toBe(0o750);
    expect((await stat(join(host, "app/private"))).mode & 0o777).toBe(0o700);
    expect((await stat(join(host, "app/empty"))).mode & 0o777).toBe(0o755);
  });

  test("an empty local directory makes its destination", async ({ server }) => {
    const local = join(server.root, "nothing");
    await mkdir(local);
    const vol = new Volume("empty-top", { transport: server.defaultTransport });
    await vol.putDir(local, "dest/sub");
    const host = await server.store.hostPath("default", "empty-top");
    expect((await stat(join(host, "dest/sub"))).isDirectory()).toBe(true);
  });

  test("a directory entry over an existing file fails the batch and changes nothing", async ({ server }) => {
    const vol = new Volume("clash", { transport: server.defaultTransport });
    await vol.putFile("app/x", "file");
    const local = join(server.root, "clash");
    await mkdir(join(local, "x"), { recursive: true });
    await writeFile(join(local, "new.txt"), "n");
    const err = await rejection(vol.batchUpload((b) => b.putDir(local, "app")));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain('"app/x"');
    expect((await vol.listFiles()).map((f) => f.path)).toEqual(["app/x"]);
  });

  test("a symlink planted where a directory goes is refused and never followed", async ({ server }) => {
    const vol = new Volume("plant", { transport: server.defaultTransport });
    await vol.putFile("seed", "s");
    const host = await server.store.hostPath("default", "plant");
    const outside = join(server.root, "outside");
    await mkdir(outside, { mode: 0o700 });
    await symlink(outside, join(host, "d"));
    await symlink(outside, join(host, "via"));
    const before = await snapshotTree(server.root, (r) => r.startsWith("data"));
    const client = createClient(VolumeService, server.defaultTransport);
    for (const path of ["d", "via/below"]) {
      const err = await rejection(
        client.uploadBatch(
          (async function* () {
            yield { message: { case: "start" as const, value: { volumeName: "plant" } } };
            yield { message: { case: "directory" as const, value: { path, mode: 0o777 } } };
          })(),
        ),
      );
      expect([Code.FailedPrecondition, Code.InvalidArgument], `${path}: ${err.message}`).toContain(err.code);
    }
    expect((await stat(outside)).mode & 0o777).toBe(0o700);
    expect(await snapshotTree(server.root, (r) => r.startsWith("data"))).toEqual(before);
  });

  test("bad directory paths and modes get invalid_argument naming the field", async ({ server }) => {
    await new Volume("bad", { transport: server.defaultTransport }).putFile("a", "a");
    const client = createClient(VolumeService, server.defaultTransport);
    const send = (path: string, mode: number) =>
      rejection(
        client.uploadBatch(
          (async function* () {
            yield { message: { case: "start" as const, value: { volumeName: "bad" } } };
            yield { message: { case: "directory" as const, value: { path, mode } } };
          })(),
        ),
      );
    for (const path of ["../up", "/abs", "a/../b", ""]) {
      const err = await send(path, 0);
      expect(err.code, path).toBe(Code.InvalidArgument);
      expect(err.field, path).toBe("path");
    }
    const err = await send("ok", 0o17777);
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.field).toBe("mode");
  });
});

test("random trees round-trip: every directory (empty or not) and file, with modes", async ({ server }) => {
  const name = fc.constantFrom("a", "b", "c", "d d", "é");
  const tree: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    node: fc.dictionary(name, fc.oneof({ depthSize: "small" }, fc.string({ maxLength: 8 }), tie("node")), {
      maxKeys: 3,
    }),
  })).node;
  let round = 0;
  await fc.assert(
    fc.asyncProperty(tree, fc.constantFrom(0o700, 0o750, 0o755, 0o777), async (t, dirMode) => {
      const local = await mkdtemp(join(tmpdir(), "chalk-updirs-"));
      try {
        const plant = async (dir: string, node: Record<string, unknown>) => {
          for (const [k, v] of Object.entries(node)) {
            if (typeof v === "string") await writeFile(join(dir, k), v);
            else {
              await mkdir(join(dir, k));
              await plant(join(dir, k), v as Record<string, unknown>);
              await chmod(join(dir, k), dirMode);
            }
          }
        };
        await plant(local, t as Record<string, unknown>);
        const volume = `rt-${round++}`;
        const vol = new Volume(volume, { transport: server.defaultTransport });
        await vol.putDir(local, "");
        const host = await server.store.hostPath("default", volume);
        expect(await snapshotTree(host)).toEqual(await snapshotTree(local));
        for (const e of await localDirEntries(local, [])) {
          if (e.directory) expect((await stat(join(host, e.path))).mode & 0o777, e.path).toBe(dirMode);
        }
      } finally {
        await rm(local, { recursive: true, force: true });
      }
    }),
    { numRuns: 30 },
  );
});
