import { randomBytes } from "node:crypto";
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
import { join } from "node:path";
import { ChalkError, Code, notFound, parseInput } from "@chalk/core";
import { checkEnvironment, checkVolumeName, VOLUME_NAME_PATTERN } from "../names.js";
import type { Page, VolumeFileInfo, VolumeInfo } from "../types.js";
import { parseVolumePath, parseVolumePrefix } from "../volume-path.js";
import {
  checkMode,
  checkSize,
  collect,
  fileInfo,
  fileReader,
  placeStaged,
  precheckTarget,
  stageFile,
  syncDir,
  writeNewJson,
} from "./file-staging.js";
import {
  DEFAULT_FILE_PAGE,
  DEFAULT_VOLUME_PAGE,
  decodeToken,
  encodeToken,
  pageOf,
  pageSizeOf,
} from "./paging.js";
import { ownTag } from "./process-dir.js";
import { KeyedRwLock } from "./rw-lock.js";
import {
  at,
  DIR_FLAGS,
  errno,
  hostError,
  openDirStrict,
  removeHostTree,
  removeTree,
  VolumeTree,
} from "./safe-fs.js";
import {
  type JournalFile,
  placeJournaled,
  precheckBatch,
  removeBatchDir,
  VolumeStoreBatch,
  writeJournal,
} from "./volume-batch.js";
import {
  checkQuotaBytes,
  createQuotaVolume,
  deleteQuotaVolume,
  mountVolumeDisks,
  quotaError,
  quotaStagingDir,
  type VolumeMeta,
} from "./volume-disks.js";
import { recoverDataDir } from "./volume-recovery.js";
import {
  DEFAULT_READ_CHUNK_BYTES,
  openOptionsSchema,
  type VolumeFileReader,
  type VolumeFileSource,
  type VolumeStoreCreateOptions,
  type VolumeStoreListFilesOptions,
  type VolumeStoreListOptions,
  type VolumeStoreOpenOptions,
  type VolumeStorePutOptions,
  type VolumeStoreRemoveOptions,
} from "./volume-store-options.js";

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
    await recoverDataDir(
      this.dataDir,
      (environment, name) => this.volumeDir(environment, name),
      async (journal) => {
        const volDir = this.volumeDir(journal.environment, journal.volume);
        return (await this.readMeta(volDir)) ? join(volDir, "data") : undefined;
      },
    );
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
   * or, for a quota volume, on its own file system (a staged file is renamed into place, so it must
   * be on the same file system, and it counts against the quota from its first byte).
   */
  private async stagingPath(kind: string, volDir?: string, meta?: VolumeMeta): Promise<string> {
    const quota = volDir !== undefined && meta?.quotaBytes !== undefined;
    return join(
      quota ? await quotaStagingDir(volDir) : this.stagingDir,
      `${kind}-${randomBytes(8).toString("hex")}`,
    );
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
    const meta: VolumeMeta = { createdAtMs: Date.now() };
    if (this.quotaBytes === undefined) {
      // Built in staging and renamed into place: a volume is there complete or not at all.
      const staging = await this.stagingPath("volume");
      await mkdir(join(staging, "data"), { recursive: true, mode: 0o755 });
      await writeNewJson(join(staging, "meta.json"), meta, 0o644);
      try {
        await rename(staging, dir);
      } catch (err) {
        await removeHostTree(this.stagingDir, staging.slice(this.stagingDir.length + 1));
        const code = errno(err);
        if (code === "EEXIST" || code === "ENOTEMPTY") return this.create(environment, name, options);
        throw hostError(err, "create volume", name);
      }
    } else {
      const quota = { ...meta, quotaBytes: this.quotaBytes };
      // A file system of its own, under the volume's lock so that one create in this process makes it.
      const made = await this.locks.write(this.lockKey(environment, name), async () => {
        if (await this.readMeta(dir)) return false;
        await createQuotaVolume(this.dataDir, environment, name, dir, quota);
        return true;
      });
      if (!made) return this.create(environment, name, options);
    }
    await syncDir(envDir);
    return { volume: { name, createdAt: new Date(meta.createdAtMs) }, created: true };
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
      if (meta.quotaBytes !== undefined) return deleteQuotaVolume(this.dataDir, environment, name, dir);
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
   * Opens a directory of a volume for a mount, pinned: `components` (a normalized path inside the
   * volume, empty for its root) is walked from the volume's root without following any symlink, and
   * the returned handle names the directory that was checked, whatever a sandbox that mounts the
   * volume does to its names afterwards. Mount it through `/proc/self/fd/N` and close it. not_found
   * when the volume or the directory does not exist; failed_precondition when the path is, or passes
   * through, a symlink or is not a directory.
   */
  async openMountSource(
    environment: string,
    name: string,
    components: readonly string[],
  ): Promise<FileHandle> {
    const { dir } = await this.existing(environment, name, "volumeName");
    const root = await open(join(dir, "data"), DIR_FLAGS);
    try {
      return await openDirStrict(root, components, components.join("/") || ".");
    } finally {
      await root.close();
    }
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
      return await placeStaged(tree, staged, components);
    } catch (err) {
      await unlink(staged).catch(() => undefined);
      throw err;
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
    await this.existing(batch.environment, batch.volume, "volumeName");
    return this.locks.write(this.lockKey(batch.environment, batch.volume), async () => {
      await precheckBatch(batch.dataDir, files);
      await writeJournal(batch.dir, {
        environment: batch.environment,
        volume: batch.volume,
        files: [...files.values()],
      });
      // From here on the batch happens: a crash is rolled forward when the store next opens.
      const { infos, failures } = await placeJournaled(batch.dataDir, batch.dir, [...files.values()]);
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
