import { createHash } from "node:crypto";
import { createReadStream, type Stats } from "node:fs";
import { lstat, readdir, readFile, readlink, stat } from "node:fs/promises";
import { join, posix } from "node:path";
import { create } from "@bufbuild/protobuf";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import { type FileEntry, FileEntrySchema, FileKind } from "@chalk/proto/image/v1";

/** Directory names `addLocalDir` never takes, at any depth. */
export const SKIPPED_DIR_NAMES: readonly string[] = [".git"];

/** Whether the local files' bytes are read into the spec or only hashed. */
export interface ReadLocalOptions {
  content: boolean;
}

/** The mode a copied file gets when none is given: 0o755 when the local file is executable, else 0o644. */
function defaultMode(localMode: number): number {
  return localMode & 0o111 ? 0o755 : 0o644;
}

async function hashFile(path: string): Promise<{ sha256: string; size: bigint }> {
  const hash = createHash("sha256");
  let size = 0n;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += BigInt((chunk as Buffer).byteLength);
  }
  return { sha256: hash.digest("hex"), size };
}

async function regularEntry(
  local: string,
  dest: string,
  mode: number,
  options: ReadLocalOptions,
): Promise<FileEntry> {
  if (options.content) {
    const bytes = await readFile(local);
    return create(FileEntrySchema, {
      path: dest,
      kind: FileKind.REGULAR,
      mode,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      sizeBytes: BigInt(bytes.byteLength),
      content: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    });
  }
  const { sha256, size } = await hashFile(local);
  return create(FileEntrySchema, { path: dest, kind: FileKind.REGULAR, mode, sha256, sizeBytes: size });
}

/** Stats a local source: not_found when missing, invalid_argument when of the wrong kind. */
async function statLocal(src: string, field: string, kind: "file" | "dir"): Promise<Stats> {
  const st = await stat(src).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new ChalkError(Code.NotFound, `${field}: ${src} does not exist`, { field, cause: err });
    }
    throw ChalkError.from(err);
  });
  if (kind === "file" && !st.isFile()) {
    throw invalidArgument(field, `${src} is not a regular file`, "a file (use addLocalDir for directories)");
  }
  if (kind === "dir" && !st.isDirectory()) {
    throw invalidArgument(field, `${src} is not a directory`, "a directory (use addLocalFile for files)");
  }
  return st;
}

/** The entry of one local file copied to `dest`. */
export async function localFileEntries(
  src: string,
  dest: string,
  mode: number | undefined,
  field: string,
  options: ReadLocalOptions,
): Promise<FileEntry[]> {
  const st = await statLocal(src, field, "file");
  return [await regularEntry(src, dest, mode ?? defaultMode(st.mode), options)];
}

/**
 * The entries of a local directory copied to `dest`: `dest` itself, every directory, regular file
 * and symlink below it (symlinks as links, not followed), skipping {@link SKIPPED_DIR_NAMES}.
 * Sockets, FIFOs and devices are skipped. `mode`, when given, applies to the regular files.
 */
export async function localDirEntries(
  src: string,
  dest: string,
  mode: number | undefined,
  field: string,
  options: ReadLocalOptions,
): Promise<FileEntry[]> {
  await statLocal(src, field, "dir");
  const out: FileEntry[] = [create(FileEntrySchema, { path: dest, kind: FileKind.DIRECTORY, mode: 0o755 })];
  const walk = async (localDir: string, imageDir: string): Promise<void> => {
    const names = (await readdir(localDir)).sort();
    for (const name of names) {
      const local = join(localDir, name);
      const target = posix.join(imageDir, name);
      const s = await lstat(local);
      if (s.isDirectory()) {
        if (SKIPPED_DIR_NAMES.includes(name)) continue;
        out.push(create(FileEntrySchema, { path: target, kind: FileKind.DIRECTORY, mode: 0o755 }));
        await walk(local, target);
      } else if (s.isFile()) {
        out.push(await regularEntry(local, target, mode ?? defaultMode(s.mode), options));
      } else if (s.isSymbolicLink()) {
        out.push(
          create(FileEntrySchema, {
            path: target,
            kind: FileKind.SYMLINK,
            mode: 0o777,
            linkTarget: await readlink(local),
          }),
        );
      }
    }
  };
  await walk(src, dest);
  return out;
}
