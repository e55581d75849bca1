import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import type { ImageSpec } from "@chalk/proto/image/v1";
import { LocalRuntime } from "@chalk/sandbox/local";
import type { BuildLogStream, ImageBuildEvent, ImageBuildInfo } from "../build-events.js";
import { Image } from "../image.js";
import { parseReference } from "../reference.js";
import { canonicalSpec, specDigest } from "../spec.js";
import { BaseImages } from "./base-images.js";
import { prepareBuildCa } from "./build-ca.js";
import {
  BUILD_LABEL,
  type BuildState,
  chain,
  describeStep,
  envMap,
  envRecord,
  OWNER_LABEL,
  StepExecutor,
} from "./build-steps.js";
import { acquireFileLock } from "./file-lock.js";
import type {
  ImageBuilderBuildOptions,
  ImageBuilderOpenOptions,
  ResolvedImage,
} from "./image-builder-options.js";
import { ImageDb, type ImageRecord } from "./image-db.js";
import { DEFAULT_REPOSITORY, ImagePublisher } from "./image-publish.js";
import { LayerDirs } from "./layer-dirs.js";
import type { LayerCompression } from "./layers.js";
import { type ImageConfig, type ImageManifest, OciStore, pidAlive } from "./oci-store.js";
import { RegistryClient } from "./registry-client.js";
import { RegistryPolicy } from "./registry-policy.js";
import { stepLimits } from "./step-limits.js";

interface Inflight {
  promise: Promise<ImageBuildInfo>;
  history: ImageBuildEvent[];
  historyChars: number;
  subscribers: Set<(e: ImageBuildEvent) => void>;
}

/** Log kept for callers that join a running build; beyond it, they see a note instead. */
const REPLAY_CHARS = 1 << 20;

/**
 * Builds image specs into OCI images and keeps them in a content-addressed store: an OCI image
 * layout (`oci-layout`, `index.json`, `blobs/sha256/…`) plus a SQLite index from spec digest to
 * manifest digest, a step cache, build states and bases, under `<storeDir>/chalk/`.
 *
 * The work is split by concern: {@link BaseImages} (registry and bootstrapped Debian bases),
 * {@link StepExecutor} (each step, or its cached result, as one layer; command steps run in a
 * sandbox of any `SandboxRuntime` that keeps its writable layer), {@link ImagePublisher} (config,
 * manifest, registry push and index), {@link LayerDirs} (unpacked layers). Builds of one spec are
 * shared within the process and serialized across processes with a file lock; blobs are written to
 * temporary files and renamed, and an image is recorded only once all its blobs exist, so a failed
 * or killed build leaves the store consistent.
 *
 * @example
 * ```ts
 * import { Image } from "@chalk/image";
 * import { ImageBuilder } from "@chalk/image/builder";
 *
 * await using builder = await ImageBuilder.open({ storeDir: "/var/lib/chalk/images" });
 * const image = await builder.getOrBuild(Image.debianSlim("3.11").pipInstall(["requests"]), {
 *   onEvent: (e) => e.type === "log" && process.stdout.write(e.text),
 * });
 * const rootfs = await builder.rootfs(image.manifestDigest); // layer dirs, bottom first
 * ```
 */
export class ImageBuilder implements AsyncDisposable {
  /** The store directory. */
  readonly storeDir: string;
  readonly #store: OciStore;
  readonly #db: ImageDb;
  readonly #layers: LayerDirs;
  readonly #bases: BaseImages;
  readonly #steps: StepExecutor;
  readonly #publisher: ImagePublisher;
  readonly #registry: RegistryClient | undefined;
  /** The registries this builder may contact. */
  readonly registries: RegistryPolicy;
  readonly #inflight = new Map<string, Inflight>();
  #closed = false;

  private constructor(
    storeDir: string,
    parts: {
      store: OciStore;
      db: ImageDb;
      layers: LayerDirs;
      bases: BaseImages;
      steps: StepExecutor;
      publisher: ImagePublisher;
      registry: RegistryClient | undefined;
      registries: RegistryPolicy;
    },
  ) {
    this.storeDir = storeDir;
    this.#store = parts.store;
    this.#db = parts.db;
    this.#layers = parts.layers;
    this.#bases = parts.bases;
    this.#steps = parts.steps;
    this.#publisher = parts.publisher;
    this.#registry = parts.registry;
    this.registries = parts.registries;
  }

  /**
   * Opens (creating when missing) a store. Recovers from builders that died: their sandboxes are
   * stopped and their temporary files removed.
   */
  static async open(options: ImageBuilderOpenOptions = {}): Promise<ImageBuilder> {
    const storeDir = options.storeDir ?? "/var/lib/chalk/images";
    if (!storeDir.startsWith("/"))
      throw invalidArgument("storeDir", `${storeDir} is relative`, "an absolute path");
    if (options.layerCompression !== undefined && !["gzip", "tar"].includes(options.layerCompression)) {
      throw invalidArgument("layerCompression", String(options.layerCompression), '"gzip" or "tar"');
    }
    if (options.stepTimeoutSecs !== undefined && !(options.stepTimeoutSecs > 0)) {
      throw invalidArgument(
        "stepTimeoutSecs",
        String(options.stepTimeoutSecs),
        "a positive number of seconds",
      );
    }
    stepLimits(options);
    if (options.registry) {
      parseReference(
        `${options.registry.address}/${options.registry.repository ?? DEFAULT_REPOSITORY}:x`,
        "registry",
      );
    }
    await mkdir(join(storeDir, "chalk", "layers"), { recursive: true });
    await mkdir(join(storeDir, "chalk", "locks"), { recursive: true });
    const runtime = options.runtime ?? new LocalRuntime({ stateDir: join(storeDir, "chalk", "sandboxes") });
    // Sandboxes of builders that died hold overlay mounts on temporary dirs: stop them first.
    for (const info of await runtime.list({ labels: { [BUILD_LABEL]: "1" } }).catch(() => [])) {
      const owner = Number(info.labels[OWNER_LABEL]);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && !pidAlive(owner)) {
        await (await runtime.get(info.id)).stop().catch(() => undefined);
      }
    }
    const store = await OciStore.open(storeDir);
    const buildCa = await prepareBuildCa(storeDir, options.buildCaBundle);
    const db = new ImageDb(join(storeDir, "chalk", "index.db"));
    const registry = options.registry ? new RegistryClient(options.registry) : undefined;
    const registries = new RegistryPolicy(options.allowedRegistries, options.registry?.address);
    const compression: LayerCompression = options.layerCompression ?? "gzip";
    const layers = new LayerDirs(storeDir, store);
    return new ImageBuilder(storeDir, {
      store,
      db,
      layers,
      registry,
      registries,
      bases: new BaseImages({
        store,
        db,
        layers,
        registry,
        pythonRepository: options.registry?.pythonRepository ?? "python",
        baseCacheDir: options.baseCacheDir ?? "/var/cache/chalk/image-bases",
        mirror: options.debianMirror ?? "http://deb.debian.org/debian",
        compression,
      }),
      steps: new StepExecutor({
        store,
        db,
        layers,
        runtime,
        compression,
        stepTimeoutSecs: options.stepTimeoutSecs ?? 1800,
        stepLimits: stepLimits(options),
        buildCa,
      }),
      publisher: new ImagePublisher(store, db, registry, options.registry?.repository ?? DEFAULT_REPOSITORY),
    });
  }

  #info(r: ImageRecord, status: "exists" | "succeeded"): ImageBuildInfo {
    return {
      specDigest: r.specDigest,
      status,
      manifestDigest: r.manifestDigest,
      imageUri: r.imageUri,
      message: "",
      updatedAt: new Date(r.createdAt),
      sizeBytes: r.sizeBytes,
      layerCount: r.layerCount,
    };
  }

  /**
   * Returns the image of a spec, building it when the store does not hold it (status `exists` or
   * `succeeded`). A failed build throws failed_precondition naming the step, with the step's output
   * in the events; nothing is recorded for it. Concurrent calls for one spec share one build.
   */
  async getOrBuild(
    image: Image | ImageSpec,
    options: ImageBuilderBuildOptions = {},
  ): Promise<ImageBuildInfo> {
    this.#checkOpen();
    const spec =
      image instanceof Image ? await image.toSpec() : canonicalSpec(image, "spec", { requireContent: true });
    // A registry base on a host this builder may not contact is refused before any work.
    this.registries.checkSpec(spec, "spec");
    const digest = specDigest(spec);
    const environment = options.environment ?? "default";
    const existing = this.#db.image(digest);
    if (existing && (await this.#store.hasBlob(existing.manifestDigest))) {
      this.#db.touch(digest, environment, Date.now());
      return this.#info(existing, "exists");
    }
    let job = this.#inflight.get(digest);
    if (!job) {
      const created: Inflight = {
        promise: Promise.resolve() as never,
        history: [],
        historyChars: 0,
        subscribers: new Set(),
      };
      const emit = (e: ImageBuildEvent) => {
        const size = e.type === "log" ? e.text.length : 64;
        if (created.historyChars + size <= REPLAY_CHARS) {
          created.history.push(e);
          created.historyChars += size;
        }
        for (const s of created.subscribers) s(e);
      };
      created.promise = this.#build(spec, digest, emit).finally(() => this.#inflight.delete(digest));
      this.#inflight.set(digest, created);
      job = created;
    }
    const subscriber = options.onEvent;
    if (subscriber) {
      for (const e of job.history) subscriber(e);
      job.subscribers.add(subscriber);
    }
    try {
      const result = await abortable(job.promise, options.signal);
      this.#db.touch(digest, environment, Date.now());
      return result;
    } finally {
      if (subscriber) job.subscribers.delete(subscriber);
    }
  }

  async #build(spec: ImageSpec, digest: string, emit: (e: ImageBuildEvent) => void): Promise<ImageBuildInfo> {
    const hex = digest.slice("sha256:".length);
    const log = (step: number, stream: BuildLogStream, text: string) =>
      emit({ type: "log", step, stream, text });
    const lock = await acquireFileLock(join(this.storeDir, "chalk", "locks", `${hex}.lock`));
    try {
      // Another process may have built it while we waited for the lock.
      const done = this.#db.image(digest);
      if (done && (await this.#store.hasBlob(done.manifestDigest))) return this.#info(done, "exists");
      const fromRegistry = await this.#publisher.pullBuilt(hex).catch(() => undefined);
      if (fromRegistry) return this.#info(fromRegistry, "exists");
      this.#db.putBuild({
        specDigest: digest,
        state: "building",
        ownerPid: process.pid,
        message: "",
        updatedAt: Date.now(),
      });
      const count = spec.steps.length + 1;
      let current = 0;
      try {
        const t0 = Date.now();
        const baseCached = await this.#bases.cached(spec);
        emit({ type: "step", index: 0, count, description: this.#bases.describe(spec), cached: baseCached });
        const base = await this.#bases.get(spec, (text) => log(0, "builder", text));
        emit({
          type: "step-done",
          index: 0,
          cached: baseCached,
          durationMs: Date.now() - t0,
          layerDigest: base.manifest.layers.at(-1)?.digest ?? "",
        });
        const state: BuildState = {
          layers: base.manifest.layers.map((d, i) => ({
            descriptor: d,
            diffId: base.config.rootfs.diff_ids[i]!,
          })),
          chainId: base.config.rootfs.diff_ids.reduce(chain, ""),
          env: envMap(base.config.config?.Env),
          workdir: base.config.config?.WorkingDir || undefined,
          history: [...(base.config.history ?? [])],
        };
        for (const [i, step] of spec.steps.entries()) {
          current = i + 1;
          await this.#steps.run(step, current, count, state, emit);
        }
        current = count;
        return this.#info(await this.#publisher.publish(spec, digest, base, state), "succeeded");
      } catch (err) {
        const e = ChalkError.from(err);
        const where =
          current < count
            ? `step ${current} (${current === 0 ? this.#bases.describe(spec) : describeStep(spec.steps[current - 1]!)})`
            : "recording the image";
        const message = `image build failed at ${where}: ${e.rawMessage}`;
        this.#db.putBuild({
          specDigest: digest,
          state: "failed",
          ownerPid: process.pid,
          message,
          updatedAt: Date.now(),
        });
        log(current, "builder", `${message}\n`);
        throw new ChalkError(e.code === Code.Internal ? Code.Internal : Code.FailedPrecondition, message, {
          cause: err,
          details: { step: current },
        });
      }
    } finally {
      await lock.release();
    }
  }

  /**
   * The root filesystem of an image for sandboxes: its layers unpacked once per layer (shared by
   * every image that has them) as overlayfs lower directories, bottom first. Read-only.
   */
  async rootfs(manifestDigest: string): Promise<string[]> {
    this.#checkOpen();
    return this.#layers.ofImage(manifestDigest);
  }

  /** The run configuration of a stored image: environment, working directory, entrypoint. */
  async imageConfig(
    manifestDigest: string,
  ): Promise<{ env: Record<string, string>; workdir: string | undefined; entrypoint: string[] }> {
    const manifest = await this.#store.readJson<ImageManifest>(manifestDigest);
    const config = await this.#store.readJson<ImageConfig>(manifest.config.digest);
    return {
      env: envRecord(envMap(config.config?.Env)),
      workdir: config.config?.WorkingDir || undefined,
      entrypoint: config.config?.Entrypoint ?? [],
    };
  }

  /** Gets or builds an image and returns what a sandbox needs to run it. */
  async resolve(image: Image | ImageSpec, options: ImageBuilderBuildOptions = {}): Promise<ResolvedImage> {
    const built = await this.getOrBuild(image, options);
    return this.#resolved(built.imageUri, built.specDigest, built.manifestDigest, built.status === "exists");
  }

  /**
   * Resolves an image reference: `local/<repository>@sha256:…` from this store, anything else
   * pulled from its registry (or the configured one) into the store. A host the builder may not
   * contact ({@link ImageBuilderOpenOptions.allowedRegistries}) is invalid_argument naming `field`,
   * before any request.
   */
  async resolveReference(reference: string, field = "image"): Promise<ResolvedImage> {
    this.#checkOpen();
    const ref = this.registries.checkReference(reference, field);
    if (ref.registry === undefined && ref.repository.startsWith("local/") && ref.digest) {
      if (!(await this.#store.hasBlob(ref.digest)))
        throw new ChalkError(Code.NotFound, `image ${reference} is not in this store`);
      return this.#resolved(reference, "", ref.digest, true);
    }
    const address = ref.registry ?? this.#registry?.address;
    if (!address) {
      throw new ChalkError(
        Code.NotFound,
        `image ${JSON.stringify(reference)} names no registry and this builder has none configured`,
      );
    }
    const pulled = await this.#bases.pulled(ref, address);
    return this.#resolved(reference, "", pulled.manifestDigest, true);
  }

  async #resolved(
    imageUri: string,
    digest: string,
    manifestDigest: string,
    cached: boolean,
  ): Promise<ResolvedImage> {
    const [rootfs, config] = await Promise.all([
      this.rootfs(manifestDigest),
      this.imageConfig(manifestDigest),
    ]);
    return { imageUri, digest, manifestDigest, rootfs, ...config, cached };
  }

  /** What the store knows about a spec digest; not_found when it never saw it. */
  async status(specDigest: string): Promise<ImageBuildInfo> {
    this.#checkOpen();
    if (!/^sha256:[a-f0-9]{64}$/.test(specDigest)) {
      throw invalidArgument(
        "spec_digest",
        `${JSON.stringify(specDigest)} is not a spec digest`,
        "sha256:<64 hex>",
      );
    }
    const image = this.#db.image(specDigest);
    if (image) return this.#info(image, "exists");
    const build = this.#db.build(specDigest);
    if (!build) throw new ChalkError(Code.NotFound, `image spec ${specDigest} not found`);
    const running =
      build.state === "building" && (this.#inflight.has(specDigest) || pidAlive(build.ownerPid));
    const info: ImageBuildInfo = {
      specDigest,
      status: running ? "building" : "failed",
      manifestDigest: "",
      imageUri: "",
      message: running ? "" : build.state === "failed" ? build.message : "the build was interrupted",
      updatedAt: new Date(build.updatedAt),
      sizeBytes: 0,
      layerCount: 0,
    };
    return info;
  }

  /** One page of the images an environment built or asked for, newest first. */
  list(
    environment: string,
    options: { pageSize?: number; pageToken?: string } = {},
  ): { images: ImageBuildInfo[]; nextPageToken: string } {
    this.#checkOpen();
    const pageSize = options.pageSize || 100;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
      throw invalidArgument("page_size", String(pageSize), "1 to 1000");
    }
    // A token is the base64url of a decimal offset; anything else (SQLite would refuse an offset
    // past 2^63, and parseInt reads "12abc" as 12) is not a token this server issued.
    const decoded = options.pageToken ? Buffer.from(options.pageToken, "base64url").toString("latin1") : "0";
    const offset = /^[0-9]{1,15}$/.test(decoded) ? Number(decoded) : Number.NaN;
    if (!Number.isSafeInteger(offset))
      throw invalidArgument("page_token", "not a token from a previous page");
    const rows = this.#db.listForEnvironment(environment, offset, pageSize + 1);
    const more = rows.length > pageSize;
    return {
      images: rows.slice(0, pageSize).map((r) => this.#info(r, "exists")),
      nextPageToken: more ? Buffer.from(String(offset + pageSize)).toString("base64url") : "",
    };
  }

  #checkOpen(): void {
    if (this.#closed) throw new ChalkError(Code.FailedPrecondition, "the image builder is closed");
  }

  /** Waits for running builds, then closes the index. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inflight.values()].map((j) => j.promise));
    this.#db.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Waits for `p`, or rejects with canceled when `signal` aborts first. */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted)
    return Promise.reject(new ChalkError(Code.Canceled, "stopped waiting for the image build"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new ChalkError(Code.Canceled, "stopped waiting for the image build"));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
