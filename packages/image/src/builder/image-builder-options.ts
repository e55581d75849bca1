import type { SandboxRuntime } from "@chalk/sandbox";
import type { ImageBuildEvent } from "../build-events.js";
import type { LayerCompression } from "./layers.js";
import type { RegistryOptions } from "./registry-client.js";

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
   * The runtime that runs build steps: any `SandboxRuntime` that takes root filesystem layers
   * (`rootfs`) and keeps a sandbox's writable layer in `writableLayerDir`, which becomes the step's
   * layer. Default: a `LocalRuntime` (gVisor on this machine) with its state in
   * `<storeDir>/chalk/sandboxes`.
   */
  runtime?: SandboxRuntime;
  /** Registry for base images and built images. Default: none (bases are bootstrapped locally). */
  registry?: ImageBuilderRegistryOptions;
  /**
   * Other registries (`host` or `host:port`) that image references and registry bases may name,
   * besides `registry`. Given (even empty), every other host is refused with invalid_argument before
   * any request is sent (a server passes its configuration here). Default: undefined, any host.
   */
  allowedRegistries?: readonly string[];
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
