import { copyFile, link, rename, rm, stat, symlink } from "node:fs/promises";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import type { ImageSpec } from "@chalk/proto/image/v1";
import { formatReference, type ImageReference, parseReference } from "../reference.js";
import { PYTHON_VERSIONS } from "../validation.js";
import { bootstrapDebianBase, DEBIAN_PYTHON_SUITES } from "./debian-base.js";
import type { ImageDb } from "./image-db.js";
import type { LayerDirs } from "./layer-dirs.js";
import type { LayerCompression } from "./layers.js";
import { type ImageConfig, type ImageManifest, MEDIA_TYPE, type OciStore } from "./oci-store.js";
import { RegistryClient } from "./registry-client.js";
import { pullImage, type StoredImage } from "./registry-transfer.js";

/** Key of the bases table for a registry base: where it came from. */
export function registryBaseKey(ref: ImageReference, address: string): string {
  return `registry:${formatReference({ ...ref, registry: address })}`;
}

function debianRegistryBaseKey(version: string, address: string): string {
  return `debian-slim:${version}@${address}`;
}

function debianLocalBaseKey(version: string, compression: LayerCompression): string {
  return `debian-slim:${version}@local:${compression}`;
}

/** The Python versions a local bootstrap makes: `3.11 (Debian bookworm), 3.13 (Debian trixie)`. */
function localPythons(): string {
  return Object.entries(DEBIAN_PYTHON_SUITES)
    .map(([v, s]) => `${v} (Debian ${s})`)
    .join(", ");
}

/** What {@link BaseImages} works with. */
export interface BaseImagesContext {
  store: OciStore;
  db: ImageDb;
  layers: LayerDirs;
  /** The configured registry, if any. */
  registry: RegistryClient | undefined;
  /** Repository of the `python:<version>-slim` bases in the registry. */
  pythonRepository: string;
  /** Where locally bootstrapped Debian bases are cached, shared by every store. */
  baseCacheDir: string;
  /** Debian mirror for bootstraps. */
  mirror: string;
  compression: LayerCompression;
}

/**
 * The base images of specs, kept in the store and recorded in the bases table: a registry image
 * (`Image.fromRegistry`, pulled once), or `Image.debianSlim(version)`: the registry's
 * `python:<version>-slim` when there is one, else a Debian bootstrapped on this machine (cached in
 * `baseCacheDir`, shared by every store).
 */
export class BaseImages {
  constructor(private readonly c: BaseImagesContext) {}

  /** The base step as the build log shows it: `FROM python:3.11-slim`. */
  describe(spec: ImageSpec): string {
    const b = spec.base?.source;
    if (b?.case === "debianSlim") return `FROM python:${b.value.pythonVersion}-slim`;
    return `FROM ${b?.value?.reference ?? "?"}`;
  }

  /** Whether the store holds the spec's base already (a registry base or a local bootstrap). */
  async cached(spec: ImageSpec): Promise<boolean> {
    const b = spec.base?.source;
    const keys: string[] = [];
    if (b?.case === "registry") {
      const ref = parseReference(b.value.reference, "spec.base.registry.reference");
      const address = ref.registry ?? this.c.registry?.address;
      if (address) keys.push(registryBaseKey(ref, address));
    } else if (b?.case === "debianSlim") {
      if (this.c.registry) keys.push(debianRegistryBaseKey(b.value.pythonVersion, this.c.registry.address));
      keys.push(debianLocalBaseKey(b.value.pythonVersion, this.c.compression));
    }
    for (const key of keys) {
      const known = this.c.db.base(key);
      if (known && (await this.c.store.hasBlob(known))) return true;
    }
    return false;
  }

  /** The base image of a spec, in the store. */
  async get(spec: ImageSpec, log: (text: string) => void): Promise<StoredImage> {
    const b = spec.base?.source;
    if (b?.case === "registry") {
      const ref = parseReference(b.value.reference, "spec.base.registry.reference");
      const address = ref.registry ?? this.c.registry?.address;
      if (!address) {
        throw new ChalkError(
          Code.FailedPrecondition,
          `fromRegistry(${JSON.stringify(b.value.reference)}) names no registry host and this builder has no registry configured`,
        );
      }
      return this.pulled(ref, address, log);
    }
    if (b?.case !== "debianSlim") throw invalidArgument("spec.base", "required");
    const version = b.value.pythonVersion;
    const suite = DEBIAN_PYTHON_SUITES[version];
    const registry = this.c.registry;
    if (registry) {
      const key = debianRegistryBaseKey(version, registry.address);
      try {
        return await this.cachedBase(key, () =>
          pullImage(registry, this.c.store, this.c.pythonRepository, `${version}-slim`, log),
        );
      } catch (err) {
        if (ChalkError.from(err).code !== Code.NotFound) throw err;
        if (!suite) {
          throw new ChalkError(
            Code.FailedPrecondition,
            `Python ${version} is not available: the registry at ${registry.address} has no ${this.c.pythonRepository}:${version}-slim ` +
              `(push one there, for example with skopeo copy), and Debian ships only ${localPythons()} for a local bootstrap`,
            { cause: err },
          );
        }
        log(
          `${registry.address}/${this.c.pythonRepository}:${version}-slim not found; bootstrapping Debian ${suite} locally\n`,
        );
      }
    }
    if (!suite) {
      throw new ChalkError(
        Code.FailedPrecondition,
        `Python ${version} is not available here: without a registry this builder bootstraps only the Python a Debian suite ships: ${localPythons()}. ` +
          `For ${version}, configure a registry (ImageBuilder.open({ registry: { address } }), or the server's --registry) that serves ${this.c.pythonRepository}:${version}-slim` +
          ` (accepted versions: ${PYTHON_VERSIONS.join(", ")})`,
      );
    }
    return this.cachedBase(debianLocalBaseKey(version, this.c.compression), () =>
      this.#importDebianBase(version, log),
    );
  }

  /** A registry image, pulled into the store once (then read from it). */
  pulled(ref: ImageReference, address: string, log?: (text: string) => void): Promise<StoredImage> {
    const client = address === this.c.registry?.address ? this.c.registry : new RegistryClient({ address });
    return this.cachedBase(registryBaseKey(ref, address), () =>
      pullImage(client, this.c.store, ref.repository, ref.digest ?? ref.tag ?? "latest", log),
    );
  }

  /** The base recorded under `key` when the store still holds all of it, else `make()`'s, recorded. */
  async cachedBase(key: string, make: () => Promise<StoredImage>): Promise<StoredImage> {
    const known = this.c.db.base(key);
    if (known && (await this.c.store.hasBlob(known))) {
      const manifest = await this.c.store.readJson<ImageManifest>(known);
      const config = await this.c.store.readJson<ImageConfig>(manifest.config.digest);
      const present = await Promise.all(manifest.layers.map((l) => this.c.store.hasBlob(l.digest)));
      if (present.every(Boolean)) return { manifestDigest: known, manifest, config };
    }
    const made = await make();
    this.c.db.putBase(key, made.manifestDigest, Date.now());
    return made;
  }

  /** Bootstraps (or reuses the machine's cached) Debian base and adds it to the store. */
  async #importDebianBase(version: string, log: (text: string) => void): Promise<StoredImage> {
    const { store } = this.c;
    const base = await bootstrapDebianBase(version, {
      cacheDir: this.c.baseCacheDir,
      mirror: this.c.mirror,
      compression: this.c.compression,
      onLog: log,
    });
    const layer = base.layer;
    if (!(await store.hasBlob(layer.digest))) {
      const tmp = store.tempPath();
      // A hard link shares the cached blob's bytes; another filesystem gets a copy.
      await link(base.blobPath, tmp).catch(() => copyFile(base.blobPath, tmp));
      await store.adoptBlob(tmp, layer.digest);
    }
    // The cached root filesystem is that layer unpacked: sandboxes use it directly.
    const dir = this.c.layers.path(layer.diffId);
    if (!(await stat(dir).catch(() => undefined))) {
      const tmpLink = store.tempPath();
      await symlink(base.rootfs, tmpLink);
      await rename(tmpLink, dir).catch(() => rm(tmpLink, { force: true }));
    }
    const config: ImageConfig = {
      created: new Date(0).toISOString(),
      architecture: "amd64",
      os: "linux",
      config: { Env: base.env },
      rootfs: { type: "layers", diff_ids: [layer.diffId] },
      history: [
        {
          created_by: `debootstrap --variant=minbase ${base.suite} (python ${base.pythonVersion}, venv at /opt/venv)`,
        },
      ],
    };
    const configDesc = await store.putJson(MEDIA_TYPE.config, config);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.manifest,
      config: configDesc,
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
    };
    const desc = await store.putJson(MEDIA_TYPE.manifest, manifest);
    return { manifestDigest: desc.digest, manifest, config };
  }
}
