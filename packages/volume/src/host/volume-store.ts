import { randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import {
  type FileHandle,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rmdir,
  unlink,
} from "node:fs/promises";
import { basename, dirname, isAbsolute, join } from "node:path";
import { ChalkError, Code, invalidArgument, notFound, parseInput } from "@chalk/core";
import { z } from "zod";
import { checkEnvironment, checkVolumeName, VOLUME_NAME_PATTERN } from "../names.js";
import type { Page, VolumeFileInfo, VolumeInfo } from "../types.js";
import { parseVolumePath, parseVolumePrefix } from "../volume-path.js";
import { ownTag, tagAlive } from "./process-dir.js";
import { KeyedRwLock } from "./rw-lock.js";
import {
  at,
  DIR_FLAGS,
  errno,
  hostError,
  listDir,
  removeHostTree,
  removeTree,
  VolumeTree,
} from "./safe-fs.js";
import {
  checkQuotaBytes,
  createVolumeDisk,
  mountVolumeDisks,
  quotaError,
  removeVolumeDisk,
  VOLUME_STAGING,
} from "./volume-disks.js";

/** Bytes per chunk of a streamed read, unless configured otherwise. */
export const DEFAULT_READ_CHUNK_BYTES = 256 * 1024;

const openOptionsSchema = z.object({
  dataDir: z.string().refine(isAbsolute, "must be an absolute path"),
  readChunkBytes: z
    .number()
    .int()
    .min(4096)
    .max(4 * 1024 * 1024)
    .optional(),
  quotaBytes: z.number().optional(),
});

/** Options for {@link VolumeStore.open}. */
export interface VolumeStoreOpenOptions {
  /**
   * Absolute host directory that holds every volume of every environment; created (mode 0711) when
   * missing. Must be one file system: writes are renamed into place from a staging area inside it.
   */
  dataDir: string;
  /** Bytes per chunk of a streamed read (4 KiB – 4 MiB). Default 256 KiB. */
  readChunkBytes?: number;
  /**
   * Quota of each volume created from now on, in bytes (16 MiB to 16 TiB): the volume is a file
   * system of that size of its own (see `volume-disks.ts`), so a write past it fails, in the API
   * with `resource_exhausted` and in a sandbox with ENOSPC. Volumes made before keep none. Default:
   * none (volumes share the data directory's file system).
   */
  quotaBytes?: number;
}

/** Options for {@link VolumeStore.create}. */
export interface VolumeStoreCreateOptions {
  /** Return the existing volume instead of failing with already_exists. */
  existOk?: boolean;
}

/** Options for {@link VolumeStore.list} and {@link VolumeStore.listFiles}. */
export interface VolumeStoreListOptions {
  /** Entries per page. Default 100 for volumes, 1000 for files. */
  pageSize?: number;
  /** `nextPageToken` of the previous page. */
  pageToken?: string;
}

/** Options for {@link VolumeStore.listFiles}. */
export interface VolumeStoreListFilesOptions extends VolumeStoreListOptions {
  /** String prefix of the paths to list (`"data/"`, `"data/a"`). Default: every file. */
  prefix?: string;
}

/** Options for {@link VolumeStore.putFile} and {@link VolumeStoreBatch.putFile}. */
export interface VolumeStorePutOptions {
  /** Permission bits of the new file. Default 0o644. */
  mode?: number;
  /** Expected size in bytes: a stream of another length fails and writes nothing. */
  size?: number;
  /** Aborts the write; nothing is written. */
  signal?: AbortSignal;
}

/** Options for {@link VolumeStore.removeFile}. */
export interface VolumeStoreRemoveOptions {
  /** Also remove a directory with everything below it. Default false: directories are refused. */
  recursive?: boolean;
}

/** What a file's content may be given as. */
export type VolumeFileSource = Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** An open file of a volume, streamed in chunks. Iterate it to the end or close it. */
export interface VolumeFileReader extends AsyncIterable<Uint8Array>, AsyncDisposable {
  /** The file as it was when opened. Later replacements do not affect this reader. */
  readonly info: VolumeFileInfo;
  /** Closes the file without reading further. */
  close(): Promise<void>;
}

interface VolumeMeta {
  createdAtMs: number;
  /** The volume's quota, when it has a file system of its own. */
  quotaBytes?: number;
}

interface JournalFile {
  staged: string;
  components: string[];
}

interface Journal {
  environment: string;
  volume: string;
  files: JournalFile[];
}

const DEFAULT_VOLUME_PAGE = 100;
const DEFAULT_FILE_PAGE = 1000;

function pageSizeOf(value: number | undefined, fallback: number, max: number): number {
  if (value === undefined || value === 0) return fallback;
  if (!Number.isInteger(value) || value < 0) throw invalidArgument("pageSize", "must be a positive integer");
  return Math.min(value, max);
}

function encodeToken(last: string): string {
  return Buffer.from(last, "utf8").toString("base64url");
}

function decodeToken(token: string | undefined): string | undefined {
  if (!token) return undefined;
  if (!/^[A-Za-z0-9_-]+$/.test(token))
    throw invalidArgument("pageToken", "is not a token this server issued");
  return Buffer.from(token, "base64url").toString("utf8");
}

/** Returns a page of sorted `items` after `token`. */
function pageOf<T>(items: T[], key: (t: T) => string, size: number, token: string | undefined): Page<T> {
  const after = decodeToken(token);
  const rest = after === undefined ? items : items.filter((t) => key(t) > after);
  const page = rest.slice(0, size);
  const last = page[page.length - 1];
  return { items: page, nextPageToken: rest.length > size && last ? encodeToken(key(last)) : undefined };
}

function checkMode(mode: number | undefined): number {
  if (mode === undefined || mode === 0) return 0o644;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw invalidArgument("mode", `${mode} is not a permission mode`, "an integer from 0 to 0o7777");
  }
  return mode & 0o777;
}

function checkSize(size: number | undefined): number | undefined {
  if (size === undefined) return undefined;
  if (!Number.isSafeInteger(size) || size < 0)
    throw invalidArgument("size", "must be a non-negative integer");
  return size;
}

function fileInfo(path: string, st: Stats): VolumeFileInfo {
  return { path, size: st.size, modifiedAt: st.mtime, mode: st.mode & 0o7777 };
}

async function* chunksOf(source: VolumeFileSource): AsyncIterable<Uint8Array> {
  if (source instanceof Uint8Array) {
    yield source;
    return;
  }
  yield* source as AsyncIterable<Uint8Array>;
}

/** Writes all of `chunk` at the handle's position. */
async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

/**
 * Durable named volumes on the host: one directory per (environment, volume) under a data
 * directory, which sandboxes bind-mount and the gRPC service reads and writes.
 *
 * Guarantees:
 * - Each file write is atomic: the content goes to a staging file on the same file system, is
 *   fsynced, renamed over the target, and the target's directory is fsynced. Readers (the API or a
 *   sandbox) see the old or the new file, never a mix, even if this process is killed mid-write;
 *   staging files of a dead process are removed the next time a store opens the data directory.
 * - Paths are normalized and confined: every access walks the tree one name at a time through open
 *   directory handles with O_NOFOLLOW (see `safe-fs.ts`), so neither `..`, nor absolute paths, nor
 *   symlinks planted by a sandbox reach outside the volume.
 * - A batch ({@link VolumeStore.batch}) is staged completely, then renamed into place under the
 *   volume's exclusive lock after a journal is written: API readers see all of it or none of it,
 *   and a crash during the renames is rolled forward when the store next opens. Sandboxes that
 *   mount the volume may observe the renames happen, one file at a time, within that short window.
 *
 * @example
 * ```ts
 * import { VolumeStore } from "@chalk/volume/host";
 * await using store = await VolumeStore.open({ dataDir: "/var/lib/chalk" });
 * await store.create("default", "training-data", { existOk: true });
 * await store.putFile("default", "training-data", "inputs/example.txt", new TextEncoder().encode("hello\n"));
 * const dir = await store.hostPath("default", "training-data"); // bind-mount this into a sandbox
 * ```
 */
export class VolumeStore implements AsyncDisposable {
  private readonly locks = new KeyedRwLock();
  private closed = false;

  private constructor(
    /** The data directory. */
    readonly dataDir: string,
    private readonly readChunkBytes: number,
    private readonly stagingDir: string,
    private readonly quotaBytes: number | undefined,
  ) {}

  /**
   * Opens (creating when missing) the store in `options.dataDir`, removes what killed processes left
   * behind (staging files, half-deleted volumes) and finishes batches that were committing.
   */
  static async open(options: VolumeStoreOpenOptions): Promise<VolumeStore> {
    const opts = parseInput(openOptionsSchema, options, "options");
    if (opts.quotaBytes !== undefined) checkQuotaBytes(opts.quotaBytes);
    const dataDir = opts.dataDir;
    try {
      await mkdir(dataDir, { recursive: true, mode: 0o711 });
      for (const sub of ["volumes", "tmp", "trash"])
        await mkdir(join(dataDir, sub), { recursive: true, mode: 0o711 });
    } catch (err) {
      throw new ChalkError(Code.FailedPrecondition, `cannot create the volume data directory ${dataDir}`, {
        cause: err,
      });
    }
    const store = new VolumeStore(
      dataDir,
      opts.readChunkBytes ?? DEFAULT_READ_CHUNK_BYTES,
      join(dataDir, "tmp", ownTag()),
      opts.quotaBytes,
    );
    await mountVolumeDisks(dataDir, (env, name) => store.volumeDir(env, name));
    await store.recover();
    await mkdir(store.stagingDir, { recursive: true, mode: 0o700 });
    return store;
  }

  /** Removes leftovers of dead processes and rolls committing batches forward. */
  private async recover(): Promise<void> {
    const tmp = join(this.dataDir, "tmp");
    for (const tag of await readdir(tmp)) {
      if (tagAlive(tag)) continue;
      const dir = join(tmp, tag);
      for (const entry of await readdir(dir).catch(() => [] as string[])) {
        if (entry.startsWith("batch-")) await this.rollForward(join(dir, entry));
      }
      await removeHostTree(tmp, tag);
    }
    const trash = join(this.dataDir, "trash");
    for (const entry of await readdir(trash)) await removeHostTree(trash, entry);
    // Quota volumes stage on their own file system.
    for (const environment of await readdir(join(this.dataDir, "volumes")).catch(() => [] as string[])) {
      for (const name of await readdir(join(this.dataDir, "volumes", environment)).catch(
        () => [] as string[],
      )) {
        const staging = join(this.volumeDir(environment, name), VOLUME_STAGING);
        for (const tag of await readdir(staging).catch(() => [] as string[])) {
          if (tagAlive(tag)) continue;
          for (const entry of await readdir(join(staging, tag)).catch(() => [] as string[])) {
            if (entry.startsWith("batch-")) await this.rollForward(join(staging, tag, entry));
          }
          await removeHostTree(staging, tag);
        }
      }
    }
  }

  /** Finishes a batch whose journal was written before its process died. */
  private async rollForward(batchDir: string): Promise<void> {
    let journal: Journal;
    try {
      journal = JSON.parse(await readFile(join(batchDir, "journal.json"), "utf8")) as Journal;
    } catch {
      return; // never committed: discarded with its directory
    }
    const volDir = this.volumeDir(journal.environment, journal.volume);
    if (!(await this.readMeta(volDir))) return;
    await using tree = await VolumeTree.open(join(volDir, "data"));
    for (const f of journal.files) {
      const staged = join(batchDir, f.staged);
      const present = await lstat(staged).then(
        () => true,
        () => false,
      );
      if (present) await this.placeStaged(tree, staged, f.components).catch(() => undefined);
    }
  }

  /** Tries to remove this process's staging directory; the store must not be used afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await rmdir(this.stagingDir).catch(() => undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private volumeDir(environment: string, name: string): string {
    return join(this.dataDir, "volumes", environment, name);
  }

  private lockKey(environment: string, name: string): string {
    return `${environment}/${name}`;
  }

  private async readMeta(volDir: string): Promise<VolumeMeta | undefined> {
    try {
      return JSON.parse(await readFile(join(volDir, "meta.json"), "utf8")) as VolumeMeta;
    } catch (err) {
      if (errno(err) === "ENOENT" || errno(err) === "ENOTDIR") return undefined;
      throw hostError(err, "read metadata of", volDir);
    }
  }

  /** Validates names and returns the volume's directory; not_found when it does not exist. */
  private async existing(
    environment: string,
    name: string,
    field = "name",
  ): Promise<{ dir: string; meta: VolumeMeta }> {
    checkEnvironment(environment);
    checkVolumeName(name, field);
    const dir = this.volumeDir(environment, name);
    const meta = await this.readMeta(dir);
    if (!meta) throw notFound("volume", name);
    return { dir, meta };
  }

  /**
   * A new staging path for a write to the volume in `volDir`: in this process's staging directory,
   * or, for a quota volume, in its own file system's (a staged file is renamed into place, so it
   * must be on the same file system, and it counts against the quota from its first byte).
   */
  private async stagingPath(kind: string, volDir?: string, meta?: VolumeMeta): Promise<string> {
    const name = `${kind}-${randomBytes(8).toString("hex")}`;
    if (volDir === undefined || meta?.quotaBytes === undefined) return join(this.stagingDir, name);
    const dir = join(volDir, VOLUME_STAGING, ownTag());
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return join(dir, name);
  }

  /** Creates a volume; already_exists when the name is taken, unless `existOk`. */
  async create(
    environment: string,
    name: string,
    options: VolumeStoreCreateOptions = {},
  ): Promise<{ volume: VolumeInfo; created: boolean }> {
    checkEnvironment(environment);
    checkVolumeName(name);
    const dir = this.volumeDir(environment, name);
    const existingMeta = await this.readMeta(dir);
    if (existingMeta) {
      if (options.existOk)
        return { volume: { name, createdAt: new Date(existingMeta.createdAtMs) }, created: false };
      throw new ChalkError(Code.AlreadyExists, `volume ${JSON.stringify(name)} already exists`);
    }
    const envDir = join(this.dataDir, "volumes", environment);
    await mkdir(envDir, { recursive: true, mode: 0o711 });
    if (this.quotaBytes !== undefined) return this.createWithQuota(environment, name, dir, envDir, options);
    // Built in staging and renamed into place: a volume is there complete or not at all.
    const staging = await this.stagingPath("volume");
    const meta: VolumeMeta = { createdAtMs: Date.now() };
    await mkdir(join(staging, "data"), { recursive: true, mode: 0o755 });
    const fh = await open(join(staging, "meta.json"), "wx", 0o644);
    try {
      await fh.writeFile(JSON.stringify(meta));
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(staging, dir);
    } catch (err) {
      await removeHostTree(this.stagingDir, staging.slice(this.stagingDir.length + 1));
      const code = errno(err);
      if (code === "EEXIST" || code === "ENOTEMPTY") return this.create(environment, name, options);
      throw hostError(err, "create volume", name);
    }
    await syncDir(envDir);
    return { volume: { name, createdAt: new Date(meta.createdAtMs) }, created: true };
  }

  /**
   * Creates a quota volume: its file system, then `meta.json` on it last (until then the volume
   * does not exist for readers), under the volume's lock so that one create in this process makes it.
   */
  private async createWithQuota(
    environment: string,
    name: string,
    dir: string,
    envDir: string,
    options: VolumeStoreCreateOptions,
  ): Promise<{ volume: VolumeInfo; created: boolean }> {
    const quotaBytes = this.quotaBytes as number;
    return this.locks.write(this.lockKey(environment, name), async () => {
      const existing = await this.readMeta(dir);
      if (existing) {
        if (options.existOk)
          return { volume: { name, createdAt: new Date(existing.createdAtMs) }, created: false };
        throw new ChalkError(Code.AlreadyExists, `volume ${JSON.stringify(name)} already exists`);
      }
      const meta: VolumeMeta = { createdAtMs: Date.now(), quotaBytes };
      await createVolumeDisk(this.dataDir, environment, name, dir, quotaBytes).catch((err: unknown) => {
        throw errno(err) === "EEXIST" || errno(err) === "ENOTEMPTY"
          ? new ChalkError(Code.AlreadyExists, `volume ${JSON.stringify(name)} already exists`, {
              cause: err,
            })
          : hostError(err, "create volume", name);
      });
      try {
        const fh = await open(join(dir, "meta.json"), "wx", 0o644);
        try {
          await fh.writeFile(JSON.stringify(meta));
          await fh.sync();
        } finally {
          await fh.close();
        }
        await syncDir(dir);
      } catch (err) {
        await removeVolumeDisk(this.dataDir, environment, name, dir).catch(() => undefined);
        throw hostError(err, "create volume", name);
      }
      await syncDir(envDir);
      return { volume: { name, createdAt: new Date(meta.createdAtMs) }, created: true };
    });
  }

  /** Returns a volume; not_found when it does not exist. */
  async get(environment: string, name: string): Promise<VolumeInfo> {
    const { meta } = await this.existing(environment, name);
    return { name, createdAt: new Date(meta.createdAtMs) };
  }

  /** Lists an environment's volumes ordered by name, a page at a time (default 100, at most 1000). */
  async list(environment: string, options: VolumeStoreListOptions = {}): Promise<Page<VolumeInfo>> {
    checkEnvironment(environment);
    const size = pageSizeOf(options.pageSize, DEFAULT_VOLUME_PAGE, 1000);
    let names: string[];
    try {
      names = await readdir(join(this.dataDir, "volumes", environment));
    } catch (err) {
      if (errno(err) === "ENOENT") names = [];
      else throw hostError(err, "list volumes of", environment);
    }
    names = names.filter((n) => VOLUME_NAME_PATTERN.test(n)).sort();
    const after = decodeToken(options.pageToken);
    const infos: VolumeInfo[] = [];
    let next: string | undefined;
    for (const n of names) {
      if (after !== undefined && n <= after) continue;
      if (infos.length === size) {
        next = encodeToken(infos[infos.length - 1]!.name);
        break;
      }
      const meta = await this.readMeta(this.volumeDir(environment, n));
      if (meta) infos.push({ name: n, createdAt: new Date(meta.createdAtMs) });
    }
    return { items: infos, nextPageToken: next };
  }

  /**
   * Deletes a volume with all its files. The directory is first renamed out of reach (so the name
   * is free at once), then removed without following any symlink in it. Sandboxes that still mount
   * it keep an empty, detached directory.
   */
  async delete(environment: string, name: string): Promise<void> {
    const { dir, meta } = await this.existing(environment, name);
    await this.locks.write(this.lockKey(environment, name), async () => {
      if (meta.quotaBytes !== undefined) {
        // A mount point cannot be renamed: its metadata goes first (the name is free at once), then
        // its file system with everything on it.
        await unlink(join(dir, "meta.json")).catch((err: unknown) => {
          throw errno(err) === "ENOENT" ? notFound("volume", name) : hostError(err, "delete volume", name);
        });
        await removeVolumeDisk(this.dataDir, environment, name, dir);
        await syncDir(join(this.dataDir, "volumes", environment));
        return;
      }
      const trashName = `${environment}-${name}-${randomBytes(6).toString("hex")}`;
      try {
        await rename(dir, join(this.dataDir, "trash", trashName));
      } catch (err) {
        if (errno(err) === "ENOENT") throw notFound("volume", name);
        throw hostError(err, "delete volume", name);
      }
      await syncDir(join(this.dataDir, "volumes", environment));
      await removeHostTree(join(this.dataDir, "trash"), trashName);
    });
  }

  /**
   * The host directory of a volume's contents, to bind-mount into a sandbox (read-write or
   * read-only, as the mounter chooses). not_found when the volume does not exist. The directory
   * lives as long as the volume: across sandboxes and server restarts.
   */
  async hostPath(environment: string, name: string): Promise<string> {
    const { dir } = await this.existing(environment, name);
    return join(dir, "data");
  }

  /**
   * Lists the regular files whose path starts with `prefix`, ordered by path, a page at a time
   * (default 1000, at most 10000). Symlinks and special files are not listed; directories appear
   * through their files.
   */
  async listFiles(
    environment: string,
    name: string,
    options: VolumeStoreListFilesOptions = {},
  ): Promise<Page<VolumeFileInfo>> {
    const prefix = parseVolumePrefix(options.prefix);
    const size = pageSizeOf(options.pageSize, DEFAULT_FILE_PAGE, 10_000);
    decodeToken(options.pageToken);
    const { dir } = await this.existing(environment, name, "volumeName");
    const files = await this.locks.read(this.lockKey(environment, name), async () => {
      await using tree = await VolumeTree.open(join(dir, "data"));
      const slash = prefix.lastIndexOf("/");
      const base = slash < 0 ? "" : prefix.slice(0, slash);
      const start = await tree.openDir(base === "" ? [] : base.split("/"));
      const out: VolumeFileInfo[] = [];
      if (!start) return out;
      await collect(start, base, prefix, out);
      return out;
    });
    files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return pageOf(files, (f) => f.path, size, options.pageToken);
  }

  /**
   * Opens a file for a streamed read in chunks of `readChunkBytes`. The reader holds the file open:
   * a concurrent replacement does not change what it reads. Memory stays at about one chunk.
   */
  async readFile(environment: string, name: string, path: string): Promise<VolumeFileReader> {
    const components = parseVolumePath(path);
    const { dir } = await this.existing(environment, name, "volumeName");
    const { handle, stat } = await this.locks.read(this.lockKey(environment, name), async () => {
      await using tree = await VolumeTree.open(join(dir, "data"));
      return await tree.openFile(components);
    });
    return fileReader(handle, fileInfo(components.join("/"), stat), this.readChunkBytes);
  }

  /**
   * Writes a file atomically from bytes or a stream of chunks (consumed with backpressure, memory
   * stays at about one chunk). Path problems are reported before any data is read; missing parent
   * directories are created; an existing file is replaced. A failed or aborted stream writes nothing.
   */
  async putFile(
    environment: string,
    name: string,
    path: string,
    data: VolumeFileSource,
    options: VolumeStorePutOptions = {},
  ): Promise<VolumeFileInfo> {
    const components = parseVolumePath(path);
    const mode = checkMode(options.mode);
    const size = checkSize(options.size);
    const { dir, meta } = await this.existing(environment, name, "volumeName");
    const dataDir = join(dir, "data");
    await precheckTarget(dataDir, components);
    const staged = await this.stagingPath("put", dir, meta);
    await stageFile(staged, data, mode, size, options.signal).catch((err: unknown) => {
      throw quotaError(err, name, meta.quotaBytes);
    });
    try {
      await using tree = await VolumeTree.open(dataDir);
      return await this.placeStaged(tree, staged, components);
    } catch (err) {
      await unlink(staged).catch(() => undefined);
      throw err;
    }
  }

  /** Renames a staged file to its place (creating parents), fsyncs the directory, returns its info. */
  private async placeStaged(tree: VolumeTree, staged: string, components: string[]): Promise<VolumeFileInfo> {
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

  /**
   * Removes a file (or a symlink: never its target). A directory is refused unless `recursive`, then
   * removed with everything below it. not_found when absent.
   */
  async removeFile(
    environment: string,
    name: string,
    path: string,
    options: VolumeStoreRemoveOptions = {},
  ): Promise<void> {
    const components = parseVolumePath(path);
    const shown = components.join("/");
    const { dir } = await this.existing(environment, name, "volumeName");
    await using tree = await VolumeTree.open(join(dir, "data"));
    const ref = await tree.parent(components, "fail").catch((err: unknown) => {
      if (err instanceof ChalkError && err.code === Code.NotFound) throw notFound("file", shown);
      throw err;
    });
    try {
      const st = await lstat(at(ref.dir, ref.name)).catch((err: unknown) => {
        throw errno(err) === "ENOENT" ? notFound("file", shown) : hostError(err, "remove", shown);
      });
      if (st.isDirectory()) {
        if (!options.recursive) {
          throw new ChalkError(
            Code.FailedPrecondition,
            `${JSON.stringify(shown)} is a directory; remove it with recursive set`,
          );
        }
        await removeTree(ref.dir, ref.name);
      } else {
        await unlink(at(ref.dir, ref.name)).catch((err: unknown) => {
          throw errno(err) === "ENOENT" ? notFound("file", shown) : hostError(err, "remove", shown);
        });
      }
      await ref.dir.sync();
    } finally {
      await ref.dir.close();
    }
  }

  /**
   * Starts a batch: files written to it are staged and appear together at {@link VolumeStoreBatch.commit}.
   * not_found when the volume does not exist.
   */
  async batch(environment: string, name: string): Promise<VolumeStoreBatch> {
    const { dir, meta } = await this.existing(environment, name, "volumeName");
    const batchDir = await this.stagingPath("batch", dir, meta);
    await mkdir(batchDir, { mode: 0o700 });
    return new VolumeStoreBatch(this, environment, name, join(dir, "data"), batchDir, meta.quotaBytes);
  }

  /** @internal Commits a batch: pre-flight, journal, renames under the volume's exclusive lock. */
  async commitBatch(batch: VolumeStoreBatch, files: Map<string, JournalFile>): Promise<VolumeFileInfo[]> {
    const paths = [...files.keys()];
    const set = new Set(paths);
    for (const p of paths) {
      const parts = p.split("/");
      for (let i = 1; i < parts.length; i++) {
        const ancestor = parts.slice(0, i).join("/");
        if (set.has(ancestor)) {
          throw invalidArgument(
            "path",
            `the batch writes both ${JSON.stringify(ancestor)} and ${JSON.stringify(p)}, which needs it to be a directory`,
          );
        }
      }
    }
    await this.existing(batch.environment, batch.volume, "volumeName");
    return this.locks.write(this.lockKey(batch.environment, batch.volume), async () => {
      for (const f of files.values()) await precheckTarget(batch.dataDir, f.components);
      const journal: Journal = {
        environment: batch.environment,
        volume: batch.volume,
        files: [...files.values()],
      };
      const jf = await open(join(batch.dir, "journal.json"), "wx", 0o600);
      try {
        await jf.writeFile(JSON.stringify(journal));
        await jf.sync();
      } finally {
        await jf.close();
      }
      await syncDir(batch.dir);
      // From here on the batch happens: a crash is rolled forward when the store next opens.
      const infos: VolumeFileInfo[] = [];
      const failures: string[] = [];
      await using tree = await VolumeTree.open(batch.dataDir);
      for (const f of files.values()) {
        try {
          infos.push(await this.placeStaged(tree, join(batch.dir, f.staged), f.components));
        } catch (err) {
          failures.push(`${f.components.join("/")}: ${ChalkError.from(err).rawMessage}`);
        }
      }
      await removeBatchDir(batch.dir);
      if (failures.length > 0) {
        throw new ChalkError(
          Code.Aborted,
          `the volume changed while the batch was applied; not written: ${failures.join("; ")}`,
        );
      }
      return infos;
    });
  }

  /** @internal Discards a batch's staging directory. */
  async discardBatch(batch: VolumeStoreBatch): Promise<void> {
    await removeBatchDir(batch.dir).catch(() => undefined);
  }
}

/**
 * Files staged for one volume that appear together on {@link VolumeStoreBatch.commit}. Disposing
 * an uncommitted batch discards it.
 */
export class VolumeStoreBatch implements AsyncDisposable {
  private readonly files = new Map<string, JournalFile>();
  private state: "open" | "committing" | "done" = "open";
  private counter = 0;

  /** @internal */
  constructor(
    private readonly store: VolumeStore,
    /** The environment of the volume. */
    readonly environment: string,
    /** The volume name. */
    readonly volume: string,
    /** @internal Host directory of the volume's contents. */
    readonly dataDir: string,
    /** @internal Staging directory of this batch. */
    readonly dir: string,
    /** @internal The volume's quota, when it has one. */
    private readonly quotaBytes?: number,
  ) {}

  /** Number of distinct paths staged so far. */
  get size(): number {
    return this.files.size;
  }

  /**
   * Stages one file (bytes or a stream of chunks). A later file with the same path replaces an
   * earlier one. Path problems are reported before any data is read.
   */
  async putFile(path: string, data: VolumeFileSource, options: VolumeStorePutOptions = {}): Promise<void> {
    if (this.state !== "open")
      throw new ChalkError(Code.FailedPrecondition, "the batch is already committed or discarded");
    const components = parseVolumePath(path);
    const mode = checkMode(options.mode);
    const size = checkSize(options.size);
    await precheckTarget(this.dataDir, components);
    const staged = `${this.counter++}`;
    await stageFile(join(this.dir, staged), data, mode, size, options.signal).catch((err: unknown) => {
      throw quotaError(err, this.volume, this.quotaBytes);
    });
    const key = components.join("/");
    const previous = this.files.get(key);
    if (previous) await unlink(join(this.dir, previous.staged)).catch(() => undefined);
    this.files.set(key, { staged, components });
  }

  /** Moves every staged file into place; API readers see all of them or none. */
  async commit(): Promise<VolumeFileInfo[]> {
    if (this.state !== "open")
      throw new ChalkError(Code.FailedPrecondition, "the batch is already committed or discarded");
    this.state = "committing";
    try {
      return await this.store.commitBatch(this, this.files);
    } catch (err) {
      await this.store.discardBatch(this);
      throw err;
    } finally {
      this.state = "done";
    }
  }

  /** Discards every staged file. */
  async abort(): Promise<void> {
    if (this.state !== "open") return;
    this.state = "done";
    await this.store.discardBatch(this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.abort();
  }
}

/** Removes a batch's staging directory (in the store's staging area or a quota volume's). */
function removeBatchDir(dir: string): Promise<void> {
  return removeHostTree(dirname(dir), basename(dir));
}

/** Fsyncs a host directory (its entries: created, renamed, removed names). */
async function syncDir(path: string): Promise<void> {
  const fh = await open(path, DIR_FLAGS);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Checks, before any data is read, that `components` can become a file: every existing ancestor is
 * a directory (or an in-volume symlink to one) and the target is not a directory.
 */
async function precheckTarget(dataDir: string, components: string[]): Promise<void> {
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
async function stageFile(
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
async function collect(dir: FileHandle, base: string, prefix: string, out: VolumeFileInfo[]): Promise<void> {
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

function fileReader(handle: FileHandle, info: VolumeFileInfo, chunkBytes: number): VolumeFileReader {
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
