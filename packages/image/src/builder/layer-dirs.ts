import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { unpackLayer } from "./layers.js";
import type { Descriptor, ImageConfig, ImageManifest, OciStore } from "./oci-store.js";

/** A layer of an image: its blob and its diff id. */
export interface BuiltLayer {
  descriptor: Descriptor;
  diffId: string;
}

/**
 * The unpacked layers of the store, `<storeDir>/chalk/layers/<diff id hex>`: each layer once,
 * shared read-only by every image (and sandbox) that has it, as overlayfs lower directories.
 */
export class LayerDirs {
  readonly #rootfsCache = new Map<string, Promise<string[]>>();

  constructor(
    private readonly storeDir: string,
    private readonly store: OciStore,
  ) {}

  /** The directory of a layer, by diff id. */
  path(diffId: string): string {
    return join(this.storeDir, "chalk", "layers", diffId.slice("sha256:".length));
  }

  /** Layer directories for layers, unpacking the ones not unpacked yet (temp dir + rename). */
  async ensure(layers: readonly BuiltLayer[]): Promise<string[]> {
    const dirs: string[] = [];
    for (const l of layers) {
      const dir = this.path(l.diffId);
      if (!(await stat(dir).catch(() => undefined))) {
        const tmp = this.store.tempPath(".layer");
        await mkdir(tmp);
        try {
          await unpackLayer(this.store.blobPath(l.descriptor.digest), tmp);
          await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
            // Another builder unpacked it first: theirs is as good as ours.
            if (err.code !== "ENOTEMPTY" && err.code !== "EEXIST") throw err;
          });
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
      }
      dirs.push(dir);
    }
    return dirs;
  }

  /** The layer directories of a stored image, bottom first (cached per manifest). */
  ofImage(manifestDigest: string): Promise<string[]> {
    let p = this.#rootfsCache.get(manifestDigest);
    if (!p) {
      p = (async () => {
        const manifest = await this.store.readJson<ImageManifest>(manifestDigest);
        const config = await this.store.readJson<ImageConfig>(manifest.config.digest);
        return this.ensure(
          manifest.layers.map((d, i) => ({ descriptor: d, diffId: config.rootfs.diff_ids[i]! })),
        );
      })();
      this.#rootfsCache.set(manifestDigest, p);
      p.catch(() => this.#rootfsCache.delete(manifestDigest));
    }
    return p;
  }
}
