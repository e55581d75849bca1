import { createReadStream } from "node:fs";
import { lstat, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { invalidArgument } from "@chalk/core";

/** Bytes per message of an upload: large enough to be cheap, far below the 8 MiB message limit. */
export const UPLOAD_CHUNK_BYTES = 256 * 1024;

/** One file to upload: where it goes, and how to produce its bytes. */
export interface UploadEntry {
  /** Normalized path inside the volume. */
  path: string;
  /** Permission bits. */
  mode: number;
  /** Size in bytes, when known up front (the server then checks it). */
  size: number | undefined;
  /** Produces the content in chunks of at most {@link UPLOAD_CHUNK_BYTES}. */
  chunks(): AsyncIterable<Uint8Array>;
  /** A directory (created, with `mode`, even when empty), not a file: it has no content. */
  directory?: boolean;
}

/** A directory to reproduce (empty or not), with its permission bits. */
export function directoryEntry(path: string, mode: number): UploadEntry {
  return { path, mode, size: undefined, directory: true, chunks: async function* () {} };
}

/** Splits bytes into views of at most {@link UPLOAD_CHUNK_BYTES}, without copying. */
export function* sliceChunks(data: Uint8Array): Generator<Uint8Array> {
  for (let offset = 0; offset < data.byteLength; offset += UPLOAD_CHUNK_BYTES) {
    yield data.subarray(offset, Math.min(offset + UPLOAD_CHUNK_BYTES, data.byteLength));
  }
}

/** An upload of in-memory content (strings as UTF-8). */
export function bytesEntry(path: string, data: Uint8Array | string, mode: number | undefined): UploadEntry {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  if (!(bytes instanceof Uint8Array)) throw invalidArgument("data", "must be a Uint8Array or a string");
  return {
    path,
    mode: mode ?? 0o644,
    size: bytes.byteLength,
    async *chunks() {
      yield* sliceChunks(bytes);
    },
  };
}

/** An upload of a local file, streamed from disk; mode defaults to the local file's. */
export async function localFileEntry(
  path: string,
  localPath: string,
  mode: number | undefined,
): Promise<UploadEntry> {
  const st = await stat(localPath).catch((err: unknown) => {
    throw invalidArgument("localPath", `cannot read ${JSON.stringify(localPath)}: ${(err as Error).message}`);
  });
  if (!st.isFile()) throw invalidArgument("localPath", `${JSON.stringify(localPath)} is not a regular file`);
  return {
    path,
    mode: mode ?? st.mode & 0o777,
    size: st.size,
    chunks: () => createReadStream(localPath, { highWaterMark: UPLOAD_CHUNK_BYTES }),
  };
}

/**
 * The tree below a local directory, as uploads under `destComponents`, in a stable order (each
 * directory before what it holds): every directory, empty ones included, with its permission bits,
 * and every regular file. Symlinks to regular files upload their content; symlinks to directories
 * are not followed (no loops); dangling symlinks and other special files are skipped, and so are
 * directories named in `skip`, at any depth.
 */
export async function localDirEntries(
  localDir: string,
  destComponents: readonly string[],
  skip: ReadonlySet<string> = new Set(),
): Promise<UploadEntry[]> {
  const top = await stat(localDir).catch((err: unknown) => {
    throw invalidArgument("localDir", `cannot read ${JSON.stringify(localDir)}: ${(err as Error).message}`);
  });
  if (!top.isDirectory()) throw invalidArgument("localDir", `${JSON.stringify(localDir)} is not a directory`);
  const out: UploadEntry[] = [];
  const walk = async (dir: string, rel: string[]) => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const full = join(dir, name);
      const lst = await lstat(full);
      if (lst.isDirectory()) {
        if (skip.has(name)) continue;
        out.push(directoryEntry([...destComponents, ...rel, name].join("/"), lst.mode & 0o777));
        await walk(full, [...rel, name]);
      } else if (
        lst.isFile() ||
        (lst.isSymbolicLink() && (await stat(full).catch(() => undefined))?.isFile())
      ) {
        out.push(await localFileEntry([...destComponents, ...rel, name].join("/"), full, undefined));
      }
    }
  };
  await walk(localDir, []);
  // An empty local directory still makes its destination (0755, as a copy's target directory).
  if (out.length === 0 && destComponents.length > 0)
    out.push(directoryEntry(destComponents.join("/"), 0o755));
  return out;
}
