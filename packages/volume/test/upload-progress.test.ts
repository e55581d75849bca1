import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect } from "vitest";
import { UPLOAD_CHUNK_BYTES, Volume, type VolumeUploadProgress } from "../src/index.js";
import { tempRoot, test } from "./helpers.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function localDir(): Promise<string> {
  const d = await tempRoot();
  dirs.push(d);
  return d;
}

describe("upload progress", () => {
  test("a directory upload reports every byte and file, in order, ending complete", async ({ server }) => {
    const dir = await localDir();
    await mkdir(join(dir, "sub"));
    await writeFile(join(dir, "big.bin"), randomBytes(3 * UPLOAD_CHUNK_BYTES + 17));
    await writeFile(join(dir, "sub", "small.txt"), "hello\n");
    await writeFile(join(dir, "empty"), "");
    const seen: VolumeUploadProgress[] = [];
    const vol = new Volume("progress", { transport: server.defaultTransport });
    await vol.putDir(dir, "data", { onProgress: (p) => seen.push({ ...p }) });
    const total = 3 * UPLOAD_CHUNK_BYTES + 17 + 6;
    expect(seen.every((p) => p.bytesTotal === total && p.filesTotal === 3)).toBe(true);
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]!.bytesSent).toBeGreaterThanOrEqual(seen[i - 1]!.bytesSent);
      expect(seen[i]!.filesSent).toBeGreaterThanOrEqual(seen[i - 1]!.filesSent);
    }
    expect(seen.at(-1)).toMatchObject({ bytesSent: total, filesSent: 3 });
    expect(new Set(seen.map((p) => p.path))).toEqual(
      new Set(["data/big.bin", "data/empty", "data/sub/small.txt"]),
    );
    expect((await vol.listFiles("data/")).map((f) => f.size).sort((a, b) => a - b)).toEqual([
      0,
      6,
      total - 6,
    ]);
  });

  test("a single file upload reports its bytes; a retried upload starts again from zero", async ({
    server,
  }) => {
    const dir = await localDir();
    const file = join(dir, "f.bin");
    await writeFile(file, randomBytes(UPLOAD_CHUNK_BYTES + 1));
    const vol = new Volume("progress-one", { transport: server.defaultTransport });
    const first: number[] = [];
    await vol.putFileFromPath("f.bin", file, { onProgress: (p) => first.push(p.bytesSent) });
    expect(first.at(-1)).toBe(UPLOAD_CHUNK_BYTES + 1);
    // Deleted behind the handle's back: the write creates the volume again and sends everything again.
    await new Volume("progress-one", { transport: server.defaultTransport }).delete();
    const second: VolumeUploadProgress[] = [];
    await vol.putFileFromPath("f.bin", file, { onProgress: (p) => second.push({ ...p }) });
    expect(second.at(-1)).toMatchObject({ bytesSent: UPLOAD_CHUNK_BYTES + 1, filesSent: 1, filesTotal: 1 });
    expect(second.every((p) => p.bytesSent <= UPLOAD_CHUNK_BYTES + 1)).toBe(true);
  });
});
