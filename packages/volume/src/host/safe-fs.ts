import { constants as C, type Dirent, type Stats } from "node:fs";
import { type FileHandle, mkdir, open, readdir, readlink, rmdir, unlink } from "node:fs/promises";
import { ChalkError, Code, invalidArgument, notFound } from "@chalk/core";

/**
 * File operations confined to one directory tree that untrusted parties (sandboxes) also write.
 *
 * Every step opens one name relative to an already open directory, through `/proc/self/fd/N/name`
 * (Linux's `openat` for Node), with `O_NOFOLLOW`: a symlink or a directory swapped for a symlink
 * between a check and a use can never lead outside the tree. Symlinks on the way are followed only
 * when they are relative and their target, resolved lexically from where they sit, stays inside
 * the tree; absolute targets (which would mean a path on the host) are refused.
 */

/** Flags that open a directory and refuse a symlink in its place. */
export const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
/** Flags that open a file for reading without following a symlink or blocking on a FIFO. */
const READ_FLAGS = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;
/** Most symlinks followed while resolving one path, as Linux's MAXSYMLINKS. */
const MAX_SYMLINK_HOPS = 40;

/** The path that names `name` inside the open directory `dir`. */
export function at(dir: FileHandle, name?: string): string {
  return name === undefined ? `/proc/self/fd/${dir.fd}` : `/proc/self/fd/${dir.fd}/${name}`;
}

/** A Node system error's code, or undefined. */
export function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Translates a host file-system error into a ChalkError that names the volume path (never the host
 * path, which is the server's business).
 */
export function hostError(err: unknown, action: string, path: string): ChalkError {
  if (err instanceof ChalkError) return err;
  const code = errno(err);
  const what = `cannot ${action} ${JSON.stringify(path)}`;
  switch (code) {
    case "ENOENT":
      return new ChalkError(Code.NotFound, `${what}: no such file or directory`, { cause: err });
    case "EEXIST":
    case "ENOTEMPTY":
      return new ChalkError(Code.AlreadyExists, `${what}: it exists`, { cause: err });
    case "ENOTDIR":
      return new ChalkError(Code.FailedPrecondition, `${what}: a parent is not a directory`, { cause: err });
    case "EISDIR":
      return new ChalkError(Code.FailedPrecondition, `${what}: it is a directory`, { cause: err });
    case "ENOSPC":
    case "EDQUOT":
      return new ChalkError(Code.ResourceExhausted, `${what}: no space left on the server`, { cause: err });
    case "EROFS":
    case "EACCES":
    case "EPERM":
      return new ChalkError(Code.FailedPrecondition, `${what}: not permitted (${code})`, { cause: err });
    case "ENAMETOOLONG":
      return invalidArgument("path", "is too long for the server's file system");
    default:
      return new ChalkError(Code.Internal, `${what}: ${code ?? "unexpected error"}`, { cause: err });
  }
}

/** Counts symlink hops and lost races over one resolution. */
interface Hops {
  count: number;
  races?: number;
}

/** Most times one resolution restarts a step because the tree changed under it. */
const MAX_RACES = 100;

/**
 * The target of `name` in `dir` if it is a symlink; null if it is something else; undefined if it
 * vanished (the tree changed since the caller looked).
 */
async function linkTarget(dir: FileHandle, name: string): Promise<string | null | undefined> {
  try {
    return await readlink(at(dir, name));
  } catch (err) {
    const code = errno(err);
    if (code === "EINVAL") return null;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw hostError(err, "inspect", name);
  }
}

/** Notes that the tree changed under a step that is about to be retried; gives up after a while. */
function raced(hops: Hops, shown: string): void {
  hops.races = (hops.races ?? 0) + 1;
  if (hops.races > MAX_RACES) {
    throw new ChalkError(Code.Aborted, `${JSON.stringify(shown)} keeps changing while it is resolved`);
  }
}

/** A resolved location: an open parent directory and the final name in it. */
export interface ParentRef {
  /** The open parent directory; the caller closes it. */
  dir: FileHandle;
  /** The final component. */
  name: string;
  /** The path's components after following symlinks. */
  components: string[];
}

/** How {@link VolumeTree.parent} treats missing directories. */
export type MissingDirs = "create" | "fail";

/** The root directory of one volume, held open; every access goes through it. */
export class VolumeTree implements AsyncDisposable {
  private constructor(
    private readonly root: FileHandle,
    /** The volume path being resolved, for error messages. */
    private readonly field: string,
  ) {}

  /** Opens the tree rooted at the host directory `hostDir` (which must not be a symlink). */
  static async open(hostDir: string, field = "path"): Promise<VolumeTree> {
    return new VolumeTree(await open(hostDir, DIR_FLAGS), field);
  }

  /** Closes the root. */
  async close(): Promise<void> {
    await this.root.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * A new handle on the root, for a walk to own. (`/proc/self/fd/N` is itself a magic link, so it is
   * opened without O_NOFOLLOW; it can only lead to the directory already held.)
   */
  private reopenRoot(): Promise<FileHandle> {
    return open(at(this.root), C.O_RDONLY | C.O_DIRECTORY);
  }

  /** Resolves a symlink's target relative to the directory `from` (components), inside the tree. */
  private follow(from: readonly string[], target: string, hops: Hops, shown: string): string[] {
    hops.count += 1;
    if (hops.count > MAX_SYMLINK_HOPS) {
      throw invalidArgument(this.field, `${JSON.stringify(shown)} has too many levels of symlinks`);
    }
    if (target.startsWith("/")) {
      throw invalidArgument(
        this.field,
        `${JSON.stringify(shown)} goes through a symlink with an absolute target, which points out of the volume`,
        "paths whose symlinks are relative and stay inside the volume",
      );
    }
    const parts = [...from];
    for (const seg of target.split("/")) {
      if (seg === "" || seg === ".") continue;
      if (seg === "..") {
        if (parts.length === 0) {
          throw invalidArgument(
            this.field,
            `${JSON.stringify(shown)} goes through a symlink that points out of the volume`,
            "paths whose symlinks are relative and stay inside the volume",
          );
        }
        parts.pop();
      } else {
        parts.push(seg);
      }
    }
    return parts;
  }

  /**
   * Opens the directory that holds the last of `components`, following in-tree symlinks, creating
   * missing directories (mode 0755) when `missing` is `"create"`.
   */
  async parent(
    components: readonly string[],
    missing: MissingDirs,
    hops: Hops = { count: 0 },
  ): Promise<ParentRef> {
    const shown = components.join("/");
    let pending = [...components];
    let done: string[] = [];
    let madeLast: string | undefined;
    let cur = await this.reopenRoot();
    try {
      while (pending.length > 1) {
        const name = pending[0]!;
        let next: FileHandle;
        try {
          next = await open(at(cur, name), DIR_FLAGS);
        } catch (err) {
          const code = errno(err);
          if (code === "ENOENT" && missing === "create") {
            const here = [...done, name].join("/");
            if (madeLast === here) raced(hops, shown); // made it, and it vanished again
            madeLast = here;
            await mkdir(at(cur, name), 0o755).catch((e: unknown) => {
              if (errno(e) !== "EEXIST") throw hostError(e, "create directory", [...done, name].join("/"));
            });
            continue;
          }
          if (code === "ENOENT") throw notFound("directory", [...done, name].join("/"));
          if (code === "ELOOP" || code === "ENOTDIR") {
            const target = await linkTarget(cur, name);
            if (target === undefined) {
              raced(hops, shown);
              continue;
            }
            if (target !== null) {
              pending = [...this.follow(done, target, hops, shown), ...pending.slice(1)];
              await cur.close();
              cur = await this.reopenRoot();
              done = [];
              continue;
            }
            throw new ChalkError(
              Code.FailedPrecondition,
              `cannot use ${JSON.stringify(shown)}: ${JSON.stringify([...done, name].join("/"))} is not a directory`,
            );
          }
          throw hostError(err, "open", [...done, name].join("/"));
        }
        await cur.close();
        cur = next;
        done.push(name);
        pending.shift();
      }
      if (pending.length === 0) {
        throw new ChalkError(Code.FailedPrecondition, `${JSON.stringify(shown)} resolves to the volume root`);
      }
      return { dir: cur, name: pending[0]!, components: [...done, pending[0]!] };
    } catch (err) {
      await cur.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Opens a regular file for reading, following in-tree symlinks. not_found when absent;
   * failed_precondition when it is a directory or anything but a regular file.
   */
  async openFile(components: readonly string[]): Promise<{ handle: FileHandle; stat: Stats }> {
    const shown = components.join("/");
    const hops: Hops = { count: 0 };
    let pending = [...components];
    for (;;) {
      const ref = await this.parent(pending, "fail", hops).catch((err: unknown) => {
        if (err instanceof ChalkError && err.code === Code.NotFound) throw notFound("file", shown);
        throw err;
      });
      let handle: FileHandle | undefined;
      try {
        handle = await open(at(ref.dir, ref.name), READ_FLAGS);
      } catch (err) {
        const code = errno(err);
        if (code === "ENOENT") throw notFound("file", shown);
        if (code !== "ELOOP") throw hostError(err, "open", shown);
        // O_NOFOLLOW met a symlink as the final name: follow it if it stays inside.
        const target = await linkTarget(ref.dir, ref.name);
        if (typeof target === "string") {
          pending = this.follow(ref.components.slice(0, -1), target, hops, shown);
          if (pending.length === 0) {
            throw new ChalkError(Code.FailedPrecondition, `${JSON.stringify(shown)} is a directory`);
          }
        } else {
          raced(hops, shown); // replaced since the open: resolve the same path again
        }
      } finally {
        await ref.dir.close();
      }
      if (!handle) continue;
      const stat = await handle.stat();
      if (!stat.isFile()) {
        await handle.close();
        const kind = stat.isDirectory() ? "a directory" : "not a regular file";
        throw new ChalkError(Code.FailedPrecondition, `${JSON.stringify(shown)} is ${kind}`);
      }
      return { handle, stat };
    }
  }

  /**
   * Opens the directory at `components` (the root when empty), following in-tree symlinks;
   * undefined when it does not exist or is not a directory.
   */
  async openDir(components: readonly string[]): Promise<FileHandle | undefined> {
    if (components.length === 0) return this.reopenRoot();
    const hops: Hops = { count: 0 };
    let pending = [...components];
    for (;;) {
      let ref: ParentRef;
      try {
        ref = await this.parent(pending, "fail", hops);
      } catch (err) {
        if (
          err instanceof ChalkError &&
          (err.code === Code.NotFound || err.code === Code.FailedPrecondition)
        ) {
          return undefined;
        }
        throw err;
      }
      try {
        return await open(at(ref.dir, ref.name), DIR_FLAGS);
      } catch (err) {
        const code = errno(err);
        if (code !== "ELOOP" && code !== "ENOTDIR") {
          if (code === "ENOENT") return undefined;
          throw hostError(err, "open", components.join("/"));
        }
        const target = await linkTarget(ref.dir, ref.name);
        if (target === null) return undefined; // a file, not a directory
        if (target === undefined) {
          raced(hops, components.join("/"));
          continue;
        }
        pending = this.follow(ref.components.slice(0, -1), target, hops, components.join("/"));
        if (pending.length === 0) return this.reopenRoot();
      } finally {
        await ref.dir.close();
      }
    }
  }
}

/** Lists a directory opened with {@link DIR_FLAGS}. */
export function listDir(dir: FileHandle): Promise<Dirent[]> {
  return readdir(at(dir), { withFileTypes: true });
}

/**
 * Removes `name` inside `parent` and, when it is a directory, everything below it, without ever
 * following a symlink: each directory is opened with `O_NOFOLLOW` and emptied through its own
 * handle, so a tree that changes while it is removed cannot redirect the removal outside it.
 */
export async function removeTree(parent: FileHandle, name: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await unlink(at(parent, name));
      return;
    } catch (err) {
      const code = errno(err);
      if (code === "ENOENT") return;
      if (code !== "EISDIR" && code !== "EPERM") throw err;
    }
    let dir: FileHandle;
    try {
      dir = await open(at(parent, name), DIR_FLAGS);
    } catch (err) {
      const code = errno(err);
      if (code === "ELOOP" || code === "ENOTDIR") continue; // swapped for a symlink or file: unlink it
      if (code === "ENOENT") return;
      throw err;
    }
    try {
      for (const entry of await listDir(dir)) await removeTree(dir, entry.name);
    } finally {
      await dir.close();
    }
    try {
      await rmdir(at(parent, name));
      return;
    } catch (err) {
      const code = errno(err);
      if (code === "ENOENT") return;
      if (code !== "ENOTEMPTY" && code !== "ENOTDIR") throw err;
    }
  }
  throw new ChalkError(Code.Aborted, `cannot remove ${JSON.stringify(name)}: it keeps changing`);
}

/** Removes a host directory tree this server owns, with {@link removeTree}'s guarantees. */
export async function removeHostTree(hostDir: string, name: string): Promise<void> {
  const parent = await open(hostDir, DIR_FLAGS);
  try {
    await removeTree(parent, name);
  } finally {
    await parent.close();
  }
}

/**
 * Opens the directory at `components` below the open directory `root` without following any
 * symlink: each name is opened relative to the one before with `O_DIRECTORY | O_NOFOLLOW`, so a
 * component that is a symlink (or is swapped for one while the walk proceeds) fails instead of
 * leading anywhere. The returned handle pins the directory itself: whatever happens to its names
 * afterwards, the handle goes on naming the directory that was checked. Errors name the path
 * inside the tree (`shown`), never a host path: not_found for a missing name,
 * failed_precondition for a symlink or a name that is not a directory.
 */
export async function openDirStrict(
  root: FileHandle,
  components: readonly string[],
  shown: string,
): Promise<FileHandle> {
  let cur = await open(at(root), C.O_RDONLY | C.O_DIRECTORY);
  try {
    for (const [i, name] of components.entries()) {
      const here = components.slice(0, i + 1).join("/");
      let next: FileHandle;
      try {
        next = await open(at(cur, name), DIR_FLAGS);
      } catch (err) {
        const code = errno(err);
        if (code === "ENOENT") throw notFound("directory", here);
        if (code === "ELOOP" || code === "ENOTDIR") {
          const link = await linkTarget(cur, name);
          throw new ChalkError(
            Code.FailedPrecondition,
            typeof link === "string"
              ? `${JSON.stringify(shown)} passes through a symlink (${JSON.stringify(here)}); mounts never follow symlinks`
              : `${JSON.stringify(shown)}: ${JSON.stringify(here)} is not a directory`,
          );
        }
        throw hostError(err, "open", here);
      }
      await cur.close();
      cur = next;
    }
    return cur;
  } catch (err) {
    await cur.close().catch(() => undefined);
    throw err;
  }
}
