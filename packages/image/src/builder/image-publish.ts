import { ChalkError, Code } from "@chalk/core";
import type { ImageSpec } from "@chalk/proto/image/v1";
import type { BuildState } from "./build-steps.js";
import type { ImageDb, ImageRecord } from "./image-db.js";
import { type ImageConfig, type ImageManifest, MEDIA_TYPE, type OciStore } from "./oci-store.js";
import type { RegistryClient } from "./registry-client.js";
import { pullImage, pushImage, type StoredImage } from "./registry-transfer.js";

/** Repository of built images, unless configured. */
export const DEFAULT_REPOSITORY = "chalk/images";

/**
 * Where built images go: their config and manifest into the store, a push to the configured
 * registry (tag `spec-<spec digest hex>`, so another builder finds them), and a record in the
 * index (`index.json` and the SQLite index), which is written only once every blob exists.
 */
export class ImagePublisher {
  constructor(
    private readonly store: OciStore,
    private readonly db: ImageDb,
    private readonly registry: RegistryClient | undefined,
    readonly repository: string,
  ) {}

  /** Where an image lives, for a manifest digest: the registry's reference, else the store's. */
  imageUri(manifestDigest: string): string {
    return this.registry
      ? `${this.registry.address}/${this.repository}@${manifestDigest}`
      : `local/${this.repository}@${manifestDigest}`;
  }

  /** Writes config and manifest, pushes when a registry is configured, then records the image. */
  async publish(spec: ImageSpec, digest: string, base: StoredImage, state: BuildState): Promise<ImageRecord> {
    const entrypoint =
      spec.entrypoint.length > 0 ? [...spec.entrypoint] : (base.config.config?.Entrypoint ?? null);
    const config: ImageConfig = {
      created: new Date().toISOString(),
      architecture: "amd64",
      os: "linux",
      config: {
        Env: [...state.env].map(([k, v]) => `${k}=${v}`),
        ...(state.workdir ? { WorkingDir: state.workdir } : {}),
        Entrypoint: entrypoint,
        Cmd: spec.entrypoint.length > 0 ? null : (base.config.config?.Cmd ?? null),
        Labels: { "dev.chalk.image.spec-digest": digest },
      },
      rootfs: { type: "layers", diff_ids: state.layers.map((l) => l.diffId) },
      history: state.history,
    };
    const configDesc = await this.store.putJson(MEDIA_TYPE.config, config);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.manifest,
      config: configDesc,
      layers: state.layers.map((l) => l.descriptor),
      annotations: { "dev.chalk.image.spec-digest": digest },
    };
    for (const l of manifest.layers) {
      if (!(await this.store.hasBlob(l.digest)))
        throw new ChalkError(Code.Internal, `layer ${l.digest} is missing from the store`);
    }
    const desc = await this.store.putJson(MEDIA_TYPE.manifest, manifest);
    if (this.registry) {
      await pushImage(this.registry, this.store, this.repository, desc.digest, [`spec-${digest.slice(7)}`]);
    }
    return this.#save(digest, desc.digest, manifest);
  }

  /** An image another builder pushed for this spec (tag `spec-<hex>`), pulled into the store. */
  async pullBuilt(hex: string): Promise<ImageRecord | undefined> {
    if (!this.registry) return undefined;
    const pulled = await pullImage(this.registry, this.store, this.repository, `spec-${hex}`);
    return this.#save(`sha256:${hex}`, pulled.manifestDigest, pulled.manifest);
  }

  /** Records an image and rewrites index.json from the records, in one transaction. */
  async #save(specDigest: string, manifestDigest: string, manifest: ImageManifest): Promise<ImageRecord> {
    const record: ImageRecord = {
      specDigest,
      manifestDigest,
      imageUri: this.imageUri(manifestDigest),
      sizeBytes: manifest.layers.reduce((n, l) => n + l.size, 0),
      layerCount: manifest.layers.length,
      createdAt: Date.now(),
    };
    this.db.putImage(record);
    const manifests = await Promise.all(
      this.db.allImages().map(async (r) => ({
        mediaType: MEDIA_TYPE.manifest,
        digest: r.manifestDigest,
        size: await this.store.blobSize(r.manifestDigest).catch(() => 0),
        annotations: { "org.opencontainers.image.ref.name": `spec-${r.specDigest.slice(7)}` },
      })),
    );
    await this.store.writeIndex(manifests.filter((m) => m.size > 0));
    return record;
  }
}
