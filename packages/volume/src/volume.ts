import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import {
  type FileInfo,
  type PutFileRequestSchema,
  type UploadBatchRequestSchema,
  type VolumeInfo as VolumeInfoMessage,
  VolumeService,
} from "@chalk/proto/volume/v1";
import {
  type Client,
  createClient,
  defaultTransport,
  type Transport,
  type TransportCreateOptions,
} from "@chalk/rpc";
import { checkVolumeName } from "./names.js";
import type { VolumeFileInfo, VolumeInfo } from "./types.js";
import { trackUpload, type VolumeUploadOptions } from "./upload-progress.js";
import { bytesEntry, localDirEntries, localFileEntry, type UploadEntry } from "./upload-source.js";
import { parseVolumeDir, parseVolumePath, parseVolumePrefix } from "./volume-path.js";

/** Options for {@link Volume}'s constructor and its static methods: where the server is. */
export interface VolumeOptions extends TransportCreateOptions {
  /**
   * The connection to use. Default: a transport shared by every SDK object with the same address,
   * token and environment, from these options or `CHALK_API_SERVER`, `CHALK_TOKEN`,
   * `CHALK_ENVIRONMENT`.
   */
  transport?: Transport;
  /**
   * Create the volume on the first write when it does not exist (default true). With `false`,
   * writes to a volume that does not exist (or was deleted meanwhile) fail with not_found and
   * nothing is created: for a volume someone else owns, such as a container's upload volume.
   */
  createOnWrite?: boolean;
}

/** Options for {@link Volume.putFile} and {@link Volume.putFileFromPath}. */
export interface VolumePutFileOptions {
  /** Permission bits of the file in the volume. Default 0o644 (from bytes) or the local file's. */
  mode?: number;
}

/** Options for {@link Volume.readFileToPath}. */
export interface VolumeReadToPathOptions {
  /** Called after each chunk is written with the bytes received so far. */
  onProgress?: (bytesReceived: number) => void;
}

/** Options for {@link Volume.removeFile}. */
export interface VolumeRemoveFileOptions {
  /** Also remove a directory and everything below it. Default false. */
  recursive?: boolean;
}

/** Options for {@link Volume.create}. */
export interface VolumeCreateOptions {
  /** Succeed when the volume exists already. Default false (already_exists). */
  existOk?: boolean;
}

/** Collects the files of one {@link Volume.batchUpload}; they appear in the volume together. */
export interface VolumeBatch {
  /** Adds a file from bytes or a string (UTF-8). */
  putFile(path: string, data: Uint8Array | string, options?: VolumePutFileOptions): void;
  /** Adds a local file, streamed from disk when the batch uploads. */
  putFileFromPath(dest: string, localPath: string, options?: VolumePutFileOptions): void;
  /**
   * Adds the tree below a local directory under `dest` (`""` is the volume root): every regular
   * file and every directory, empty ones included, with their permission bits.
   */
  putDir(localDir: string, dest: string, options?: VolumePutDirOptions): void;
}

/** Options for {@link VolumeBatch.putDir} and {@link Volume.putDir}. */
export interface VolumePutDirOptions {
  /** Directory names to leave out at any depth, such as `".git"`. Default: none. */
  skip?: readonly string[];
}

function volumeFromProto(v: VolumeInfoMessage | undefined): VolumeInfo {
  if (!v) throw new ChalkError(Code.Internal, "the server sent no volume");
  return { name: v.name, createdAt: new Date(Number(v.createdAtMs)) };
}

function fileFromProto(f: FileInfo): VolumeFileInfo {
  return { path: f.path, size: Number(f.size), modifiedAt: new Date(Number(f.modifiedAtMs)), mode: f.mode };
}

function checkMode(mode: number | undefined, field = "mode"): number | undefined {
  if (mode === undefined) return undefined;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw invalidArgument(field, `${mode} is not a permission mode`, "an integer from 0 to 0o777");
  }
  return mode;
}

type BatchStep = () => Promise<UploadEntry[]>;

/**
 * A named, durable volume: files you put here appear in every sandbox or container that mounts it,
 * and outlive them. Writes are atomic per file (readers see the old or the new content); a
 * {@link Volume.batchUpload} appears all at once. Large files stream in both directions with
 * bounded memory.
 *
 * The volume is created on the first write when it does not exist; reading a volume that does not
 * exist fails with not_found.
 *
 * @example
 * ```ts
 * import { Volume } from "@chalk/volume";
 *
 * const vol = new Volume("training-data");
 * await vol.putFile("inputs/example.txt", "hello\n");
 * console.log(new TextDecoder().decode(await vol.readFile("inputs/example.txt"))); // "hello\n"
 * for (const f of await vol.listFiles("inputs/")) console.log(f.path, f.size);
 * ```
 */
export class Volume {
  /** The volume name, unique in its environment. */
  readonly name: string;
  private readonly client: Client<typeof VolumeService>;
  private ensured: Promise<void> | undefined;
  private readonly createOnWrite: boolean;

  /**
   * A handle on the volume `name` in the transport's environment. Nothing is sent until a method
   * is called; an invalid name throws invalid_argument at once.
   */
  constructor(name: string, options: VolumeOptions = {}) {
    this.name = checkVolumeName(name);
    this.client = createClient(VolumeService, options.transport ?? defaultTransport(options));
    this.createOnWrite = options.createOnWrite ?? true;
  }

  /** Lists every volume of the environment, ordered by name. */
  static async list(options: VolumeOptions = {}): Promise<VolumeInfo[]> {
    const client = createClient(VolumeService, options.transport ?? defaultTransport(options));
    const out: VolumeInfo[] = [];
    let pageToken = "";
    do {
      const res = await client.listVolumes({ pageSize: 1000, pageToken });
      out.push(...res.volumes.map(volumeFromProto));
      pageToken = res.nextPageToken;
    } while (pageToken !== "");
    return out;
  }

  /** Creates the volume; already_exists unless `existOk`. Writes create it implicitly. */
  async create(options: VolumeCreateOptions = {}): Promise<VolumeInfo> {
    const res = await this.client.createVolume({ name: this.name, existOk: options.existOk ?? false });
    return volumeFromProto(res.volume);
  }

  /** Fetches the volume's metadata; not_found when it does not exist. */
  async info(): Promise<VolumeInfo> {
    return volumeFromProto((await this.client.getVolume({ name: this.name })).volume);
  }

  /** Creates the volume once per handle, before the first write. */
  private ensure(): Promise<void> {
    if (!this.ensured) {
      this.ensured = this.create({ existOk: true }).then(
        () => undefined,
        (err: unknown) => {
          this.ensured = undefined;
          throw err;
        },
      );
    }
    return this.ensured;
  }

  /**
   * Runs a write, creating the volume first; if the volume was deleted since this handle created
   * it, creates it again and retries once (uploads are re-readable: bytes or a local file).
   */
  private async writing<T>(call: () => Promise<T>): Promise<T> {
    if (!this.createOnWrite) return call();
    await this.ensure();
    try {
      return await call();
    } catch (err) {
      const volumeGone =
        err instanceof ChalkError && err.code === Code.NotFound && err.rawMessage.startsWith("volume ");
      if (!volumeGone) throw err;
      this.ensured = undefined;
      await this.ensure();
      return call();
    }
  }

  private upload(entry: UploadEntry, restart?: () => void): Promise<VolumeFileInfo> {
    const name = this.name;
    async function* requests(): AsyncGenerator<MessageInitShape<typeof PutFileRequestSchema>> {
      restart?.();
      yield {
        message: {
          case: "header",
          value: {
            volumeName: name,
            path: entry.path,
            mode: entry.mode,
            ...(entry.size === undefined ? {} : { size: BigInt(entry.size) }),
          },
        },
      };
      for await (const data of entry.chunks()) yield { message: { case: "data", value: data } };
    }
    return this.writing(async () => {
      const res = await this.client.putFile(requests());
      if (!res.file) throw new ChalkError(Code.Internal, "the server sent no file info");
      return fileFromProto(res.file);
    });
  }

  /**
   * Writes a file (a string is written as UTF-8), replacing any file at `path`, creating parent
   * directories. Atomic: readers see the old or the new content.
   */
  async putFile(
    path: string,
    data: Uint8Array | string,
    options: VolumePutFileOptions = {},
  ): Promise<VolumeFileInfo> {
    const p = parseVolumePath(path).join("/");
    return this.upload(bytesEntry(p, data, checkMode(options.mode)));
  }

  /**
   * Uploads a local file, streamed from disk with bounded memory. Mode defaults to the local file's.
   * `onProgress` follows the bytes sent.
   */
  async putFileFromPath(
    dest: string,
    localPath: string,
    options: VolumePutFileOptions & VolumeUploadOptions = {},
  ): Promise<VolumeFileInfo> {
    const p = parseVolumePath(dest, "dest").join("/");
    const tracked = trackUpload(
      [await localFileEntry(p, localPath, checkMode(options.mode))],
      options.onProgress,
    );
    return this.upload(tracked.entries[0]!, tracked.restart);
  }

  /**
   * Uploads every regular file and every directory (empty ones included, with their permission
   * bits) below `localDir` to `dest` (`""` is the volume root), as one batch: they appear together. Returns the written files. `onProgress` follows the bytes sent.
   */
  async putDir(
    localDir: string,
    dest: string,
    options: VolumePutDirOptions & VolumeUploadOptions = {},
  ): Promise<VolumeFileInfo[]> {
    return this.batchUpload((b) => b.putDir(localDir, dest, options), options);
  }

  /**
   * Uploads several files that appear together: API readers see all of them or none, and if the
   * callback throws or the upload fails, nothing changes. The callback only collects the files;
   * they are streamed to the server after it returns, reporting to `options.onProgress`.
   *
   * @example
   * ```ts
   * await vol.batchUpload((b) => {
   *   b.putFile("config.json", JSON.stringify(config));
   *   b.putFileFromPath("weights.bin", "./out/weights.bin");
   *   b.putDir("./data", "data");
   * });
   * ```
   */
  async batchUpload(
    fill: (batch: VolumeBatch) => void | Promise<void>,
    options: VolumeUploadOptions = {},
  ): Promise<VolumeFileInfo[]> {
    const steps: BatchStep[] = [];
    const batch: VolumeBatch = {
      putFile(path, data, options = {}) {
        const entry = bytesEntry(parseVolumePath(path).join("/"), data, checkMode(options.mode));
        steps.push(async () => [entry]);
      },
      putFileFromPath(dest, localPath, options = {}) {
        const p = parseVolumePath(dest, "dest").join("/");
        const mode = checkMode(options.mode);
        steps.push(async () => [await localFileEntry(p, localPath, mode)]);
      },
      putDir(localDir, dest, options = {}) {
        const base = parseVolumeDir(dest, "dest");
        const skip = new Set(options.skip ?? []);
        steps.push(async () => {
          const entries = await localDirEntries(localDir, base, skip);
          for (const e of entries) parseVolumePath(e.path, "localDir");
          return entries;
        });
      },
    };
    await fill(batch);
    // Resolve every step (local stats, directory walks) before anything is sent.
    const resolved: UploadEntry[] = [];
    for (const step of steps) resolved.push(...(await step()));
    const { entries, restart } = trackUpload(resolved, options.onProgress);
    const name = this.name;
    async function* requests(): AsyncGenerator<MessageInitShape<typeof UploadBatchRequestSchema>> {
      restart();
      yield { message: { case: "start", value: { volumeName: name } } };
      for (const entry of entries) {
        if (entry.directory) {
          yield { message: { case: "directory", value: { path: entry.path, mode: entry.mode } } };
          continue;
        }
        yield {
          message: {
            case: "header",
            value: {
              path: entry.path,
              mode: entry.mode,
              ...(entry.size === undefined ? {} : { size: BigInt(entry.size) }),
            },
          },
        };
        for await (const data of entry.chunks()) yield { message: { case: "data", value: data } };
      }
    }
    return this.writing(async () => (await this.client.uploadBatch(requests())).files.map(fileFromProto));
  }

  /**
   * Streams a file in chunks (about 256 KiB each) with bounded memory; breaking out of the loop
   * cancels the download. not_found when the file does not exist.
   *
   * @example
   * ```ts
   * for await (const chunk of vol.readFileStream("big.bin")) hash.update(chunk);
   * ```
   */
  async *readFileStream(path: string): AsyncGenerator<Uint8Array> {
    const p = parseVolumePath(path).join("/");
    for await (const res of this.client.getFile({ volumeName: this.name, path: p })) {
      if (res.data.byteLength > 0) yield res.data;
    }
  }

  /** Reads a whole file into memory. For large files prefer {@link Volume.readFileStream}. */
  async readFile(path: string): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const c of this.readFileStream(path)) {
      chunks.push(c);
      total += c.byteLength;
    }
    const out = new Uint8Array(total);
    let offset = 0;
    for (const c of chunks) {
      out.set(c, offset);
      offset += c.byteLength;
    }
    return out;
  }

  /**
   * Downloads a file to a local path, streamed with bounded memory. The local file appears complete
   * or not at all (written next to it, then renamed). `onProgress` receives the bytes received so far.
   */
  async readFileToPath(
    path: string,
    localPath: string,
    options: VolumeReadToPathOptions = {},
  ): Promise<void> {
    const tmp = `${localPath}.chalk-download-${process.pid}-${Date.now()}`;
    const onProgress = options.onProgress;
    const chunks = this.readFileStream(path);
    async function* counted(): AsyncGenerator<Uint8Array> {
      let received = 0;
      for await (const chunk of chunks) {
        received += chunk.byteLength;
        yield chunk;
        onProgress?.(received);
      }
    }
    try {
      await pipeline(counted(), createWriteStream(tmp, { flags: "wx" }));
      await rename(tmp, localPath);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** Lists the files whose path starts with `prefix` (`"inputs/"`), ordered by path. */
  async listFiles(prefix = ""): Promise<VolumeFileInfo[]> {
    const normalized = parseVolumePrefix(prefix);
    const out: VolumeFileInfo[] = [];
    let pageToken = "";
    do {
      const res = await this.client.listFiles({
        volumeName: this.name,
        prefix: normalized,
        pageSize: 10_000,
        pageToken,
      });
      out.push(...res.files.map(fileFromProto));
      pageToken = res.nextPageToken;
    } while (pageToken !== "");
    return out;
  }

  /** Removes a file (a directory only with `recursive`); not_found when absent. */
  async removeFile(path: string, options: VolumeRemoveFileOptions = {}): Promise<void> {
    const p = parseVolumePath(path).join("/");
    await this.client.removeFile({ volumeName: this.name, path: p, recursive: options.recursive ?? false });
  }

  /** Deletes the volume and everything in it. */
  async delete(): Promise<void> {
    await this.client.deleteVolume({ name: this.name });
    this.ensured = undefined;
  }
}
