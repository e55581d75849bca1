import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";

/** OCI media types used by the store. */
export const MEDIA_TYPE = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
} as const;

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

/** An OCI image manifest. */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** The parts of an OCI image config the builder reads and writes. */
export interface ImageConfig {
  created?: string;
  architecture: string;
  os: string;
  config: {
    Env?: string[];
    WorkingDir?: string;
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Labels?: Record<string, string>;
  };
  rootfs: { type: "layers"; diff_ids: string[] };
  history?: { created?: string; created_by?: string; empty_layer?: boolean; comment?: string }[];
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** Throws unless `digest` is `sha256:<64 hex>`. */
export function checkDigest(digest: string, what = "digest"): string {
  if (!DIGEST.test(digest))
    throw new ChalkError(Code.InvalidArgument, `${what}: ${JSON.stringify(digest)} is not a sha256 digest`);
  return digest;
}

/** `sha256:<hex>` of bytes. */
export function sha256Digest(bytes: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Whether a process with this pid exists on this host. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * An OCI image layout on disk (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) plus the
 * builder's own directories under `chalk/`. Blobs are written to a temporary file, fsynced and
 * renamed into place, so a blob path that exists always holds complete, verified content.
 */
export class OciStore {
  /** The layout's root directory. */
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Opens (creating when missing) the layout at `dir` and removes temporary files of dead processes. */
  static async open(dir: string): Promise<OciStore> {
    const store = new OciStore(dir);
    await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
    await mkdir(store.tmpDir, { recursive: true });
    const layout = join(dir, "oci-layout");
    if (!(await stat(layout).catch(() => undefined))) {
      await store.#atomicWrite(layout, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    }
    if (!(await stat(join(dir, "index.json")).catch(() => undefined))) await store.writeIndex([]);
    await store.#removeStaleTemp();
    return store;
  }

  /** Where the builder keeps in-progress files (`<pid>-<random>…`). */
  get tmpDir(): string {
    return join(this.dir, "chalk", "tmp");
  }

  /** A fresh temporary path owned by this process. */
  tempPath(suffix = ""): string {
    return join(this.tmpDir, `${process.pid}-${randomBytes(6).toString("hex")}${suffix}`);
  }

  async #removeStaleTemp(): Promise<void> {
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const pid = Number(name.split("-")[0]);
      if (Number.isInteger(pid) && pid > 0 && !pidAlive(pid)) {
        await rm(join(this.tmpDir, name), { recursive: true, force: true });
      }
    }
  }

  async #atomicWrite(path: string, data: string | Uint8Array): Promise<void> {
    const tmp = this.tempPath();
    await writeFile(tmp, data);
    const fh = await open(tmp, "r");
    await fh.sync().finally(() => fh.close());
    await rename(tmp, path);
  }

  /** The path of a blob (whether or not it exists). */
  blobPath(digest: string): string {
    checkDigest(digest);
    return join(this.dir, "blobs", "sha256", digest.slice("sha256:".length));
  }

  /** Whether the blob is present. */
  async hasBlob(digest: string): Promise<boolean> {
    return (await stat(this.blobPath(digest)).catch(() => undefined))?.isFile() ?? false;
  }

  /** Size of a present blob. */
  async blobSize(digest: string): Promise<number> {
    return (await stat(this.blobPath(digest))).size;
  }

  /** Moves a complete, fsynced file into place as the blob `digest` (after checking its hash when `verify`). */
  async adoptBlob(tmpFile: string, digest: string, options: { verify?: boolean } = {}): Promise<void> {
    if (options.verify) {
      const hash = createHash("sha256");
      for await (const chunk of createReadStream(tmpFile)) hash.update(chunk as Buffer);
      const actual = `sha256:${hash.digest("hex")}`;
      if (actual !== digest) {
        await rm(tmpFile, { force: true });
        throw new ChalkError(Code.DataLoss, `blob ${digest}: content hashes to ${actual}`);
      }
    }
    await rename(tmpFile, this.blobPath(digest));
  }

  /** Writes a small blob (manifest, config) and returns its descriptor. */
  async putJson(mediaType: string, value: unknown): Promise<Descriptor> {
    const bytes = Buffer.from(JSON.stringify(value));
    return this.putBytes(mediaType, bytes);
  }

  /** Writes bytes as a blob and returns its descriptor. */
  async putBytes(mediaType: string, bytes: Uint8Array): Promise<Descriptor> {
    const digest = sha256Digest(bytes);
    if (!(await this.hasBlob(digest))) await this.#atomicWrite(this.blobPath(digest), bytes);
    return { mediaType, digest, size: bytes.byteLength };
  }

  /** Reads a blob into memory (manifests and configs). */
  async readBlob(digest: string): Promise<Buffer> {
    try {
      return await readFile(this.blobPath(digest));
    } catch (err) {
      throw new ChalkError(Code.NotFound, `blob ${digest} is not in the store`, { cause: err });
    }
  }

  /** Reads and parses a JSON blob. */
  async readJson<T>(digest: string): Promise<T> {
    return JSON.parse((await this.readBlob(digest)).toString("utf8")) as T;
  }

  /** Rewrites `index.json` to list exactly these manifests. */
  async writeIndex(manifests: readonly Descriptor[]): Promise<void> {
    await this.#atomicWrite(
      join(this.dir, "index.json"),
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests }, null, 1),
    );
  }
}
