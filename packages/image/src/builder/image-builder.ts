import { copyFile, link, mkdir, rename, rm, stat, symlink } from "node:fs/promises";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import { type ImageSpec, ImageSpecSchema, type Step, StepSchema } from "@chalk/proto/image/v1";
import { LocalRuntime } from "@chalk/sandbox/local";
import type { BuildLogStream, ImageBuildEvent, ImageBuildInfo } from "../build-events.js";
import { Image } from "../image.js";
import { formatReference, type ImageReference, parseReference } from "../reference.js";
import { canonicalSpec, specDigest, withoutContent } from "../spec.js";
import {
  aptCommands,
  pipCommands,
  runCommands,
  type StepCommand,
  workdirCommands,
} from "../step-commands.js";
import { PYTHON_VERSIONS } from "../validation.js";
import { bootstrapDebianBase, DEBIAN_PYTHON_SUITES } from "./debian-base.js";
import { acquireFileLock } from "./file-lock.js";
import { ImageDb, type ImageRecord } from "./image-db.js";
import {
  type LayerCompression,
  layerFromFiles,
  layerFromUpperDir,
  unpackLayer,
  type WrittenLayer,
} from "./layers.js";
import {
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  MEDIA_TYPE,
  OciStore,
  pidAlive,
  sha256Digest,
} from "./oci-store.js";
import { RegistryClient, type RegistryOptions } from "./registry-client.js";
import { pullImage, pushImage, type StoredImage } from "./registry-transfer.js";
import { type StepLimits, stepLimits } from "./step-limits.js";
import { runStep } from "./step-runner.js";

/** The registry a builder pulls bases from and pushes images to. */
export interface ImageBuilderRegistryOptions extends RegistryOptions {
  /** Repository of built images. Default `chalk/images`. */
  repository?: string;
  /** Repository holding the `python:<version>-slim` bases. Default `python`. */
  pythonRepository?: string;
}

/** Options for {@link ImageBuilder.open}. */
export interface ImageBuilderOpenOptions {
  /** The store: an OCI image layout plus the builder's index. Default `/var/lib/chalk/images`. */
  storeDir?: string;
  /**
   * The gVisor runtime that runs build steps. Default: a `LocalRuntime` with its state in
   * `<storeDir>/chalk/sandboxes`.
   */
  runtime?: LocalRuntime;
  /** Registry for base images and built images. Default: none (bases are bootstrapped locally). */
  registry?: ImageBuilderRegistryOptions;
  /** Where locally bootstrapped Debian bases are cached, shared by every store. Default `/var/cache/chalk/image-bases`. */
  baseCacheDir?: string;
  /** Debian mirror for bootstraps. Default `http://deb.debian.org/debian`. */
  debianMirror?: string;
  /** Layer blobs: `"gzip"` (default; level 1) or `"tar"`. */
  layerCompression?: LayerCompression;
  /** Seconds one build command may run. Default 1800. */
  stepTimeoutSecs?: number;
  /**
   * Memory limit of a build step's sandbox (`"4Gi"`): the step sees it as `MemTotal`, and a step
   * that uses more is OOM-killed and fails the build. Default `"4Gi"` (`DEFAULT_STEP_LIMITS`).
   */
  stepMemory?: string;
  /** CPU limit of a build step's sandbox (`"2"`, `"500m"`). Default `"2"`. */
  stepCpu?: string;
  /** Most processes in a build step's sandbox (its RLIMIT_NPROC). Default 1024 (`DEFAULT_PIDS`). */
  stepPids?: number;
  /**
   * A PEM bundle of CA certificates that build steps trust (pip, curl, requests, git), for hosts
   * whose egress goes through a TLS-inspecting proxy. Mounted read-only in build sandboxes only
   * (never part of an image). Default: the host's `/etc/ssl/certs/ca-certificates.crt` when present;
   * `false`: none (steps trust only their image's certificates).
   */
  buildCaBundle?: string | false;
}

/** Options for {@link ImageBuilder.getOrBuild}. */
export interface ImageBuilderBuildOptions {
  /** Receives the build's progress (replayed from the start when joining a running build). */
  onEvent?: (event: ImageBuildEvent) => void;
  /** The environment asking, for {@link ImageBuilder.list}. Default `"default"`. */
  environment?: string;
  /** Stops waiting; the build itself goes on (another caller may share it). */
  signal?: AbortSignal;
}

/** An image ready to run: what a sandbox needs. */
export interface ResolvedImage {
  /** Where the image lives. */
  imageUri: string;
  /** Spec digest (empty for an image given by reference). */
  digest: string;
  /** Manifest digest. */
  manifestDigest: string;
  /** Layer directories, bottom first, shared read-only by every sandbox of the image. */
  rootfs: string[];
  /** The image's environment. */
  env: Record<string, string>;
  /** The image's working directory, if it sets one. */
  workdir: string | undefined;
  /** The image's entrypoint (empty: none). */
  entrypoint: string[];
  /** True when nothing was built. */
  cached: boolean;
}

/** A layer of an image being built: its blob and diff id. */
interface BuiltLayer {
  descriptor: Descriptor;
  diffId: string;
}

/** What the build has made so far on top of the base. */
interface BuildState {
  layers: BuiltLayer[];
  chainId: string;
  env: Map<string, string>;
  workdir: string | undefined;
  history: NonNullable<ImageConfig["history"]>;
}

interface Inflight {
  promise: Promise<ImageBuildInfo>;
  history: ImageBuildEvent[];
  historyChars: number;
  subscribers: Set<(e: ImageBuildEvent) => void>;
}

/** Log kept for callers that join a running build; beyond it, they see a note instead. */
const REPLAY_CHARS = 1 << 20;
const DEFAULT_REPOSITORY = "chalk/images";
const BUILD_LABEL = "chalk.image/build";
const HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
/** Where build sandboxes see the CA bundle: inside their /tmp tmpfs, so no layer records the mount point. */
const BUILD_CA_DIR = "/tmp/.chalk-build-ca";
const OWNER_LABEL = "chalk.image/owner-pid";

function chain(parent: string, diffId: string): string {
  return parent === "" ? diffId : sha256Digest(`${parent} ${diffId}`);
}

function envRecord(env: Map<string, string>): Record<string, string> {
  return Object.fromEntries(env);
}

function envMap(list: readonly string[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of list ?? []) {
    const i = kv.indexOf("=");
    if (i > 0) m.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return m;
}

/** Keys of the bases table: where a base came from. */
function registryBaseKey(ref: ImageReference, address: string): string {
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

/** A one-line description of a step, for logs and image history. */
export function describeStep(step: Step): string {
  const k = step.kind;
  switch (k.case) {
    case "pipInstall":
      return `pip install ${k.value.packages.join(" ")}`;
    case "aptInstall":
      return `apt-get install ${k.value.packages.join(" ")}`;
    case "runCommands":
      return `RUN ${k.value.commands[0]}${k.value.commands.length > 1 ? ` (+${k.value.commands.length - 1} more)` : ""}`;
    case "env":
      return `ENV ${k.value.vars.map((v) => v.name).join(" ")}`;
    case "workdir":
      return `WORKDIR ${k.value.path}`;
    case "addFiles":
      return `COPY ${k.value.files.length} file(s) to ${k.value.files[0]?.path ?? "/"}`;
    default:
      return "unknown step";
  }
}

function stepCommands(step: Step): StepCommand[] {
  const k = step.kind;
  switch (k.case) {
    case "pipInstall":
      return pipCommands(k.value);
    case "aptInstall":
      return aptCommands(k.value);
    case "runCommands":
      return runCommands(k.value);
    case "workdir":
      return workdirCommands(k.value);
    default:
      return [];
  }
}

/**
 * Builds image specs into OCI images and keeps them in a content-addressed store: an OCI image
 * layout (`oci-layout`, `index.json`, `blobs/sha256/…`) plus a SQLite index from spec digest to
 * manifest digest, a step cache, build states and bases, under `<storeDir>/chalk/`.
 *
 * Each build step runs in a gVisor sandbox with network over the layers before it; what the step
 * changed becomes one layer. Steps are cached by (parent layer chain, environment, working
 * directory, step), so changing the last step rebuilds only the last step. Builds of one spec are
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
  readonly #runtime: LocalRuntime;
  readonly #registry: RegistryClient | undefined;
  readonly #repository: string;
  readonly #pythonRepository: string;
  readonly #baseCacheDir: string;
  readonly #mirror: string;
  readonly #compression: LayerCompression;
  readonly #stepTimeoutSecs: number;
  readonly #stepLimits: StepLimits;
  readonly #buildCa: { hostDir: string; env: Record<string, string> } | undefined;
  readonly #inflight = new Map<string, Inflight>();
  readonly #rootfsCache = new Map<string, Promise<string[]>>();
  #closed = false;

  private constructor(
    storeDir: string,
    store: OciStore,
    db: ImageDb,
    runtime: LocalRuntime,
    o: ImageBuilderOpenOptions,
    caDir: string | undefined,
  ) {
    this.storeDir = storeDir;
    this.#store = store;
    this.#db = db;
    this.#runtime = runtime;
    this.#registry = o.registry ? new RegistryClient(o.registry) : undefined;
    this.#repository = o.registry?.repository ?? DEFAULT_REPOSITORY;
    this.#pythonRepository = o.registry?.pythonRepository ?? "python";
    this.#baseCacheDir = o.baseCacheDir ?? "/var/cache/chalk/image-bases";
    this.#mirror = o.debianMirror ?? "http://deb.debian.org/debian";
    this.#compression = o.layerCompression ?? "gzip";
    this.#stepTimeoutSecs = o.stepTimeoutSecs ?? 1800;
    this.#stepLimits = stepLimits(o);
    if (caDir) {
      const file = `${BUILD_CA_DIR}/ca-certificates.crt`;
      this.#buildCa = {
        hostDir: caDir,
        env: {
          SSL_CERT_FILE: file,
          PIP_CERT: file,
          REQUESTS_CA_BUNDLE: file,
          CURL_CA_BUNDLE: file,
          GIT_SSL_CAINFO: file,
        },
      };
    }
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
    const caDir = await prepareBuildCa(storeDir, options.buildCaBundle);
    const db = new ImageDb(join(storeDir, "chalk", "index.db"));
    return new ImageBuilder(storeDir, store, db, runtime, options, caDir);
  }

  /** Where an image lives, for a manifest digest. */
  #imageUri(manifestDigest: string, registry: boolean): string {
    return registry && this.#registry
      ? `${this.#registry.address}/${this.#repository}@${manifestDigest}`
      : `local/${this.#repository}@${manifestDigest}`;
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
    const spec = image instanceof Image ? await image.toSpec() : canonicalSpec(image);
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
    const lockPath = join(this.storeDir, "chalk", "locks", `${hex}.lock`);
    const lock = await acquireFileLock(lockPath);
    try {
      // Another process may have built it while we waited for the lock.
      const done = this.#db.image(digest);
      if (done && (await this.#store.hasBlob(done.manifestDigest))) return this.#info(done, "exists");
      const fromRegistry = await this.#pullBuilt(hex).catch(() => undefined);
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
        const baseCached = await this.#baseCached(spec);
        emit({ type: "step", index: 0, count, description: this.#describeBase(spec), cached: baseCached });
        const base = await this.#base(spec, (text) => log(0, "builder", text));
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
          await this.#step(step, current, count, state, emit);
        }
        current = count;
        const record = await this.#record(spec, digest, base, state);
        return this.#info(record, "succeeded");
      } catch (err) {
        const e = ChalkError.from(err);
        const where =
          current < count
            ? `step ${current} (${current === 0 ? this.#describeBase(spec) : describeStep(spec.steps[current - 1]!)})`
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

  #describeBase(spec: ImageSpec): string {
    const b = spec.base?.source;
    if (b?.case === "debianSlim") return `FROM python:${b.value.pythonVersion}-slim`;
    return `FROM ${b?.value?.reference ?? "?"}`;
  }

  /** Whether the store holds the spec's base already (a registry base or a local bootstrap). */
  async #baseCached(spec: ImageSpec): Promise<boolean> {
    const b = spec.base?.source;
    const keys: string[] = [];
    if (b?.case === "registry") {
      const ref = parseReference(b.value.reference, "spec.base.registry.reference");
      const address = ref.registry ?? this.#registry?.address;
      if (address) keys.push(registryBaseKey(ref, address));
    } else if (b?.case === "debianSlim") {
      if (this.#registry) keys.push(debianRegistryBaseKey(b.value.pythonVersion, this.#registry.address));
      keys.push(debianLocalBaseKey(b.value.pythonVersion, this.#compression));
    }
    for (const key of keys) {
      const known = this.#db.base(key);
      if (known && (await this.#store.hasBlob(known))) return true;
    }
    return false;
  }

  /** The base image of a spec, in the store. */
  async #base(spec: ImageSpec, log: (text: string) => void): Promise<StoredImage> {
    const b = spec.base?.source;
    if (b?.case === "registry") {
      const ref = parseReference(b.value.reference, "spec.base.registry.reference");
      const address = ref.registry ?? this.#registry?.address;
      if (!address) {
        throw new ChalkError(
          Code.FailedPrecondition,
          `fromRegistry(${JSON.stringify(b.value.reference)}) names no registry host and this builder has no registry configured`,
        );
      }
      const client = address === this.#registry?.address ? this.#registry : new RegistryClient({ address });
      const key = registryBaseKey(ref, address);
      return this.#cachedBase(key, async () =>
        pullImage(client, this.#store, ref.repository, ref.digest ?? ref.tag ?? "latest", log),
      );
    }
    if (b?.case !== "debianSlim") throw invalidArgument("spec.base", "required");
    const version = b.value.pythonVersion;
    const suite = DEBIAN_PYTHON_SUITES[version];
    if (this.#registry) {
      const registry = this.#registry;
      const key = debianRegistryBaseKey(version, registry.address);
      try {
        return await this.#cachedBase(key, () =>
          pullImage(registry, this.#store, this.#pythonRepository, `${version}-slim`, log),
        );
      } catch (err) {
        if (ChalkError.from(err).code !== Code.NotFound) throw err;
        if (!suite) {
          throw new ChalkError(
            Code.FailedPrecondition,
            `Python ${version} is not available: the registry at ${registry.address} has no ${this.#pythonRepository}:${version}-slim ` +
              `(push one there, for example with skopeo copy), and Debian ships only ${localPythons()} for a local bootstrap`,
            { cause: err },
          );
        }
        log(
          `${registry.address}/${this.#pythonRepository}:${version}-slim not found; bootstrapping Debian ${suite} locally\n`,
        );
      }
    }
    if (!suite) {
      const local = localPythons();
      throw new ChalkError(
        Code.FailedPrecondition,
        `Python ${version} is not available here: without a registry this builder bootstraps only the Python a Debian suite ships: ${local}. ` +
          `For ${version}, configure a registry (ImageBuilder.open({ registry: { address } }), or the server's --registry) that serves ${this.#pythonRepository}:${version}-slim` +
          ` (accepted versions: ${PYTHON_VERSIONS.join(", ")})`,
      );
    }
    return this.#cachedBase(debianLocalBaseKey(version, this.#compression), () =>
      this.#importDebianBase(version, log),
    );
  }

  async #cachedBase(key: string, make: () => Promise<StoredImage>): Promise<StoredImage> {
    const known = this.#db.base(key);
    if (known && (await this.#store.hasBlob(known))) {
      const manifest = await this.#store.readJson<ImageManifest>(known);
      const config = await this.#store.readJson<ImageConfig>(manifest.config.digest);
      const present = await Promise.all(manifest.layers.map((l) => this.#store.hasBlob(l.digest)));
      if (present.every(Boolean)) return { manifestDigest: known, manifest, config };
    }
    const made = await make();
    this.#db.putBase(key, made.manifestDigest, Date.now());
    return made;
  }

  /** Bootstraps (or reuses the machine's cached) Debian base and adds it to the store. */
  async #importDebianBase(version: string, log: (text: string) => void): Promise<StoredImage> {
    const base = await bootstrapDebianBase(version, {
      cacheDir: this.#baseCacheDir,
      mirror: this.#mirror,
      compression: this.#compression,
      onLog: log,
    });
    const layer = base.layer;
    if (!(await this.#store.hasBlob(layer.digest))) {
      const tmp = this.#store.tempPath();
      // A hard link shares the cached blob's bytes; another filesystem gets a copy.
      await link(base.blobPath, tmp).catch(() => copyFile(base.blobPath, tmp));
      await this.#store.adoptBlob(tmp, layer.digest);
    }
    // The cached root filesystem is that layer unpacked: sandboxes use it directly.
    const dir = this.#layerPath(layer.diffId);
    if (!(await stat(dir).catch(() => undefined))) {
      const tmpLink = this.#store.tempPath();
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
    const configDesc = await this.#store.putJson(MEDIA_TYPE.config, config);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.manifest,
      config: configDesc,
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
    };
    const desc = await this.#store.putJson(MEDIA_TYPE.manifest, manifest);
    return { manifestDigest: desc.digest, manifest, config };
  }

  /** Runs (or takes from the cache) one step and adds its layer to the state. */
  async #step(
    step: Step,
    index: number,
    count: number,
    state: BuildState,
    emit: (e: ImageBuildEvent) => void,
  ): Promise<void> {
    const description = describeStep(step);
    const started = Date.now();
    if (step.kind.case === "env") {
      for (const v of step.kind.value.vars) state.env.set(v.name, v.value);
      emit({ type: "step", index, count, description, cached: true });
      state.history.push({ created_by: description, empty_layer: true });
      emit({ type: "step-done", index, cached: true, durationMs: 0, layerDigest: "" });
      return;
    }
    const stepBytes = toBinary(
      StepSchema,
      withoutContent(create(ImageSpecSchema, { steps: [step] })).steps[0]!,
    );
    const cacheKey = sha256Digest(
      JSON.stringify([
        state.chainId,
        [...state.env].sort(),
        state.workdir ?? "",
        Buffer.from(stepBytes).toString("hex"),
      ]),
    );
    const hit = this.#db.step(cacheKey);
    if (hit && (hit.diffId === "" || (await this.#store.hasBlob(hit.layerDigest)))) {
      emit({ type: "step", index, count, description, cached: true });
      this.#applyLayer(
        state,
        step,
        description,
        hit.diffId === ""
          ? undefined
          : {
              digest: hit.layerDigest,
              diffId: hit.diffId,
              size: hit.layerSize,
              mediaType: hit.mediaType,
              entries: 1,
            },
      );
      emit({
        type: "step-done",
        index,
        cached: true,
        durationMs: Date.now() - started,
        layerDigest: hit.layerDigest,
      });
      return;
    }
    emit({ type: "step", index, count, description, cached: false });
    const lowers = await this.#layerDirs(state.layers);
    const blobTmp = this.#store.tempPath(".blob");
    let layer: WrittenLayer;
    let upper: string | undefined;
    try {
      if (step.kind.case === "addFiles") {
        for (const f of step.kind.value.files) {
          if (f.content.byteLength === 0 && f.sizeBytes > 0n) {
            throw invalidArgument(
              "spec.steps.add_files",
              `${f.path}: the spec carries no content for this file`,
            );
          }
          if (f.sizeBytes > 0n && sha256Digest(f.content) !== `sha256:${f.sha256}`) {
            throw invalidArgument("spec.steps.add_files", `${f.path}: content does not match its sha256`);
          }
        }
        layer = await layerFromFiles(step.kind.value.files, lowers, blobTmp, this.#compression);
      } else {
        upper = this.#store.tempPath(".upper");
        await mkdir(upper);
        await runStep({
          runtime: this.#runtime,
          layers: lowers,
          upperDir: upper,
          env: envRecord(state.env),
          workdir: step.kind.case === "workdir" ? "/" : (state.workdir ?? "/"),
          commands: stepCommands(step),
          onOutput: (stream, text) => emit({ type: "log", step: index, stream, text }),
          timeoutSecs: this.#stepTimeoutSecs,
          limits: this.#stepLimits,
          labels: { [BUILD_LABEL]: "1", [OWNER_LABEL]: String(process.pid) },
          mounts: this.#buildCa ? [{ source: this.#buildCa.hostDir, target: BUILD_CA_DIR }] : [],
          buildEnv: this.#buildCa?.env ?? {},
        });
        layer = await layerFromUpperDir(upper, blobTmp, this.#compression);
      }
      if (layer.entries === 0) {
        this.#db.putStep({ cacheKey, diffId: "", layerDigest: "", layerSize: 0, mediaType: "" }, Date.now());
        this.#applyLayer(state, step, description, undefined);
      } else {
        if (!(await this.#store.hasBlob(layer.digest))) await this.#store.adoptBlob(blobTmp, layer.digest);
        // The upper dir is this layer unpacked for overlayfs: keep it as the layer's directory.
        if (upper) {
          await rename(upper, this.#layerPath(layer.diffId)).then(
            () => {
              upper = undefined;
            },
            () => undefined,
          );
        }
        this.#db.putStep(
          {
            cacheKey,
            diffId: layer.diffId,
            layerDigest: layer.digest,
            layerSize: layer.size,
            mediaType: layer.mediaType,
          },
          Date.now(),
        );
        this.#applyLayer(state, step, description, layer);
      }
    } finally {
      await rm(blobTmp, { force: true });
      if (upper) await rm(upper, { recursive: true, force: true });
    }
    emit({
      type: "step-done",
      index,
      cached: false,
      durationMs: Date.now() - started,
      layerDigest: layer.entries === 0 ? "" : layer.digest,
    });
  }

  #applyLayer(state: BuildState, step: Step, description: string, layer: WrittenLayer | undefined): void {
    if (step.kind.case === "workdir") state.workdir = step.kind.value.path;
    if (!layer) {
      state.history.push({ created_by: description, empty_layer: true });
      return;
    }
    state.layers.push({
      descriptor: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size },
      diffId: layer.diffId,
    });
    state.chainId = chain(state.chainId, layer.diffId);
    state.history.push({ created_by: description });
  }

  /** Writes config and manifest, pushes when a registry is configured, then records the image. */
  async #record(spec: ImageSpec, digest: string, base: StoredImage, state: BuildState): Promise<ImageRecord> {
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
    const configDesc = await this.#store.putJson(MEDIA_TYPE.config, config);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.manifest,
      config: configDesc,
      layers: state.layers.map((l) => l.descriptor),
      annotations: { "dev.chalk.image.spec-digest": digest },
    };
    for (const l of manifest.layers) {
      if (!(await this.#store.hasBlob(l.digest)))
        throw new ChalkError(Code.Internal, `layer ${l.digest} is missing from the store`);
    }
    const desc = await this.#store.putJson(MEDIA_TYPE.manifest, manifest);
    if (this.#registry) {
      await pushImage(this.#registry, this.#store, this.#repository, desc.digest, [
        `spec-${digest.slice(7)}`,
      ]);
    }
    const record: ImageRecord = {
      specDigest: digest,
      manifestDigest: desc.digest,
      imageUri: this.#imageUri(desc.digest, true),
      sizeBytes: manifest.layers.reduce((n, l) => n + l.size, 0),
      layerCount: manifest.layers.length,
      createdAt: Date.now(),
    };
    await this.#saveImage(record);
    return record;
  }

  /** Records an image and rewrites index.json from the records, in one transaction. */
  async #saveImage(record: ImageRecord): Promise<void> {
    this.#db.putImage(record);
    const manifests = await Promise.all(
      this.#db.allImages().map(async (r) => ({
        mediaType: MEDIA_TYPE.manifest,
        digest: r.manifestDigest,
        size: await this.#store.blobSize(r.manifestDigest).catch(() => 0),
        annotations: { "org.opencontainers.image.ref.name": `spec-${r.specDigest.slice(7)}` },
      })),
    );
    await this.#store.writeIndex(manifests.filter((m) => m.size > 0));
  }

  /** An image another builder pushed for this spec (tag `spec-<hex>`), pulled into the store. */
  async #pullBuilt(hex: string): Promise<ImageRecord | undefined> {
    if (!this.#registry) return undefined;
    const pulled = await pullImage(this.#registry, this.#store, this.#repository, `spec-${hex}`);
    const record: ImageRecord = {
      specDigest: `sha256:${hex}`,
      manifestDigest: pulled.manifestDigest,
      imageUri: this.#imageUri(pulled.manifestDigest, true),
      sizeBytes: pulled.manifest.layers.reduce((n, l) => n + l.size, 0),
      layerCount: pulled.manifest.layers.length,
      createdAt: Date.now(),
    };
    await this.#saveImage(record);
    return record;
  }

  #layerPath(diffId: string): string {
    return join(this.storeDir, "chalk", "layers", diffId.slice("sha256:".length));
  }

  /** Layer directories for layers, unpacking the ones not unpacked yet (temp dir + rename). */
  async #layerDirs(layers: readonly BuiltLayer[]): Promise<string[]> {
    const dirs: string[] = [];
    for (const l of layers) {
      const dir = this.#layerPath(l.diffId);
      if (!(await stat(dir).catch(() => undefined))) {
        const tmp = this.#store.tempPath(".layer");
        await mkdir(tmp);
        try {
          await unpackLayer(this.#store.blobPath(l.descriptor.digest), tmp);
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

  /**
   * The root filesystem of an image for sandboxes: its layers unpacked once per layer (shared by
   * every image that has them) as overlayfs lower directories, bottom first. Read-only.
   */
  async rootfs(manifestDigest: string): Promise<string[]> {
    this.#checkOpen();
    let p = this.#rootfsCache.get(manifestDigest);
    if (!p) {
      p = (async () => {
        const manifest = await this.#store.readJson<ImageManifest>(manifestDigest);
        const config = await this.#store.readJson<ImageConfig>(manifest.config.digest);
        return this.#layerDirs(
          manifest.layers.map((d, i) => ({ descriptor: d, diffId: config.rootfs.diff_ids[i]! })),
        );
      })();
      this.#rootfsCache.set(manifestDigest, p);
      p.catch(() => this.#rootfsCache.delete(manifestDigest));
    }
    return p;
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
   * pulled from its registry (or the configured one) into the store.
   */
  async resolveReference(reference: string): Promise<ResolvedImage> {
    this.#checkOpen();
    const ref = parseReference(reference, "image");
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
    const client = address === this.#registry?.address ? this.#registry : new RegistryClient({ address });
    const pulled = await this.#cachedBase(registryBaseKey(ref, address), () =>
      pullImage(client, this.#store, ref.repository, ref.digest ?? ref.tag ?? "latest"),
    );
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
    const offset = options.pageToken
      ? Number.parseInt(Buffer.from(options.pageToken, "base64url").toString(), 10)
      : 0;
    if (!Number.isInteger(offset) || offset < 0)
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

/** Copies the build CA bundle into the store (a directory to mount); undefined when there is none. */
async function prepareBuildCa(
  storeDir: string,
  option: string | false | undefined,
): Promise<string | undefined> {
  if (option === false) return undefined;
  const source = option ?? HOST_CA_BUNDLE;
  if (!source.startsWith("/"))
    throw invalidArgument("buildCaBundle", `${source} is relative`, "an absolute path or false");
  const present = await stat(source).catch(() => undefined);
  if (!present?.isFile()) {
    if (option === undefined) return undefined;
    throw new ChalkError(Code.NotFound, `buildCaBundle: ${source} is not a file`, { field: "buildCaBundle" });
  }
  const dir = join(storeDir, "chalk", "build-ca");
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.ca-${process.pid}`);
  await copyFile(source, tmp);
  await rename(tmp, join(dir, "ca-certificates.crt"));
  return dir;
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
