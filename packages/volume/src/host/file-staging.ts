import type { Stats } from "node:fs";
import { type FileHandle, lstat, open, rename, unlink } from "node:fs/promises";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import type { VolumeFileInfo } from "../types.js";
import { at, DIR_FLAGS, hostError, listDir, VolumeTree } from "./safe-fs.js";
import type { VolumeFileReader, VolumeFileSource } from "./volume-store-options.js";

/*
 * How a file gets into a volume: staged whole (and fsynced) beside the volume, then renamed into
 * place with the directory fsynced; and how one is read back, in chunks.
 */

export function checkMode(mode: number | undefined): number {
  if (mode === undefined || mode === 0) return 0o644;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw invalidArgument("mode", `${mode} is not a permission mode`, "an integer from 0 to 0o7777");
  }
  return mode & 0o777;
}

export function checkSize(size: number | undefined): number | undefined {
  if (size === undefined) return undefined;
  if (!Number.isSafeInteger(size) || size < 0)
    throw invalidArgument("size", "must be a non-negative integer");
  return size;
}

export function fileInfo(path: string, st: Stats): VolumeFileInfo {
  return { path, size: st.size, modifiedAt: st.mtime, mode: st.mode & 0o7777 };
}

export async function* chunksOf(source: VolumeFileSource): AsyncIterable<Uint8Array> {
  if (source instanceof Uint8Array) {
    yield source;
    return;
  }
  yield* source as AsyncIterable<Uint8Array>;
}

/** Writes all of `chunk` at the handle's position. */
export async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

/** Fsyncs a host directory (its entries: created, renamed, removed names). */
export async function syncDir(path: string): Promise<void> {
  const fh = await open(path, DIR_FLAGS);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes a new file holding `value` as JSON (it must not exist) and fsyncs it. */
export async function writeNewJson(path: string, value: unknown, mode: number): Promise<void> {
  const fh = await open(path, "wx", mode);
  try {
    await fh.writeFile(JSON.stringify(value));
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Checks, before any data is read, that `components` can become a file: every existing ancestor is
 * a directory (or an in-volume symlink to one) and the target is not a directory.
 */
export async function precheckTarget(dataDir: string, components: string[]): Promise<void> {
  await using tree = await VolumeTree.open(dataDir);
  let ref: Awaited<ReturnType<VolumeTree["parent"]>>;
  try {
    ref = await tree.parent(components, "fail");
  } catch (err) {
    if (err instanceof ChalkError && err.code === Code.NotFound) return; // parents get created
    throw err;
  }
  try {
    const st = await lstat(at(ref.dir, ref.name)).catch(() => undefined);
    if (st?.isDirectory()) {
      throw new ChalkError(
        Code.FailedPrecondition,
        `cannot write ${JSON.stringify(components.join("/"))}: it is a directory`,
      );
    }
  } finally {
    await ref.dir.close();
  }
}

/** Streams `data` into a new staging file, fsyncs it; removes it on any failure. */
export async function stageFile(
  staged: string,
  data: VolumeFileSource,
  mode: number,
  size: number | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const fh = await open(staged, "wx", 0o600);
  try {
    let written = 0;
    for await (const chunk of chunksOf(data)) {
      signal?.throwIfAborted();
      written += chunk.byteLength;
      if (size !== undefined && written > size) {
        throw invalidArgument("size", `the stream carried more than the announced ${size} bytes`);
      }
      await writeAll(fh, chunk);
    }
    signal?.throwIfAborted();
    if (size !== undefined && written !== size) {
      throw invalidArgument("size", `the stream carried ${written} bytes, not the announced ${size}`);
    }
    await fh.chmod(mode);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(staged).catch(() => undefined);
    if (signal?.aborted && !(err instanceof ChalkError)) {
      throw new ChalkError(Code.Canceled, "the upload was cancelled; nothing was written", { cause: err });
    }
    throw err;
  }
  await fh.close();
}

/** Walks a directory (by handle) and collects regular files under `base` that match `prefix`. */
export async function collect(
  dir: FileHandle,
  base: string,
  prefix: string,
  out: VolumeFileInfo[],
): Promise<void> {
  try {
    for (const entry of await listDir(dir)) {
      const path = base === "" ? entry.name : `${base}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!(path.startsWith(prefix) || prefix.startsWith(`${path}/`))) continue;
        const child = await open(at(dir, entry.name), DIR_FLAGS).catch(() => undefined);
        if (child) await collect(child, path, prefix, out);
      } else if (entry.isFile() && path.startsWith(prefix)) {
        const st = await lstat(at(dir, entry.name)).catch(() => undefined);
        if (st?.isFile()) out.push(fileInfo(path, st));
      }
    }
  } finally {
    await dir.close();
  }
}

export function fileReader(handle: FileHandle, info: VolumeFileInfo, chunkBytes: number): VolumeFileReader {
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  return {
    info,
    close,
    [Symbol.asyncDispose]: close,
    async *[Symbol.asyncIterator]() {
      try {
        for (;;) {
          // A fresh buffer per chunk: it is handed on (to gRPC) and must not be overwritten.
          const buf = Buffer.allocUnsafe(chunkBytes);
          const { bytesRead } = await handle.read(buf, 0, chunkBytes, null);
          if (bytesRead === 0) return;
          yield bytesRead === chunkBytes ? buf : buf.subarray(0, bytesRead);
        }
      } finally {
        await close();
      }
    },
  };
}

/** Renames a staged file to its place (creating parents), fsyncs the directory, returns its info. */
export async function placeStaged(
  tree: VolumeTree,
  staged: string,
  components: string[],
): Promise<VolumeFileInfo> {
  const ref = await tree.parent(components, "create");
  try {
    await rename(staged, at(ref.dir, ref.name)).catch((err: unknown) => {
      throw hostError(err, "write", components.join("/"));
    });
    await ref.dir.sync();
    const st = await lstat(at(ref.dir, ref.name)).catch((err: unknown) => {
      throw hostError(err, "write", components.join("/"));
    });
    return fileInfo(components.join("/"), st);
  } finally {
    await ref.dir.close();
  }
}
