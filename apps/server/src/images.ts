import { ChalkError, Code } from "@chalk/core";
import { decodeImageSpec } from "@chalk/image";

/** Where a container's image comes from, as the request names it. */
export type ImageSourceInput = { kind: "uri"; uri: string } | { kind: "spec"; spec: Uint8Array };

/** One piece of a build's log. */
export interface BuildLogEvent {
  /** 0-based step the text belongs to. */
  step: number;
  /** Number of steps. */
  steps: number;
  /** The output. */
  text: string;
}

/** A built image, ready to run. */
export interface ResolvedImage {
  /** Where the image lives (registry reference or Chalk image URI). */
  imageUri: string;
  /** Digest of the image spec (empty for an image given by URI). */
  digest: string;
  /** Root filesystem layers, bottom first (read-only, shared). */
  rootfs: string[];
  /** The image's environment. */
  env: Record<string, string>;
  /** The image's working directory, if it sets one. */
  workdir: string | undefined;
  /** The image's entrypoint (empty: none). */
  entrypoint: string[];
  /** True when the image was cached and nothing was built. */
  cached: boolean;
}

/** How the server gets images: validates sources up front, then gets or builds them. */
export interface ImageProvider {
  /** Throws invalid_argument for a malformed source, before any work starts. */
  check(source: ImageSourceInput, field: string): void;
  /** Gets the image, building it when it is not cached; build output goes to `onLog`. */
  resolve(
    source: ImageSourceInput,
    environment: string,
    onLog: (event: BuildLogEvent) => void,
    signal?: AbortSignal,
  ): Promise<ResolvedImage>;
}

/** An image provider for a server without an image builder: specs are validated, none is built. */
export const noImages: ImageProvider = {
  check(source, field) {
    if (source.kind === "spec") decodeImageSpec(source.spec, `${field}.spec`);
  },
  async resolve(source) {
    throw new ChalkError(
      Code.Unavailable,
      source.kind === "spec"
        ? "this server has no image builder; run an image reference served with --rootfs-image"
        : `image ${JSON.stringify(source.uri)} is not known to this server (no registry and no --rootfs-image of that name)`,
    );
  },
};

/**
 * Images of the local backend: references the operator mapped to host root filesystems
 * (`--rootfs-image NAME=DIR`), then whatever `next` provides (the image builder).
 */
export function rootfsImages(images: Record<string, string>, next: ImageProvider): ImageProvider {
  return {
    check(source, field) {
      if (source.kind === "uri" && images[source.uri]) return;
      next.check(source, field);
    },
    async resolve(source, environment, onLog, signal) {
      if (source.kind === "uri") {
        const dir = images[source.uri];
        if (dir) {
          return {
            imageUri: `rootfs:${source.uri}`,
            digest: "",
            rootfs: [dir],
            env: {},
            workdir: undefined,
            entrypoint: [],
            cached: true,
          };
        }
      }
      return next.resolve(source, environment, onLog, signal);
    },
  };
}
