import { existsSync } from "node:fs";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { decodeImageSpec } from "@chalk/image";
import type { ImageBuilder, ResolvedImage } from "@chalk/image/builder";
import { checkImageReference, type ImageSource } from "@chalk/spec";
import type { BackendImage, BackendImages, BuildLogLine } from "../backend/compute-backend.js";
import { ConfigError } from "../config.js";

const ROOTFS = "rootfs:";

/** Refuses (ConfigError, before anything is opened) an operator image whose directory is not a root filesystem. */
export function checkRootfsImages(images: Record<string, string>): void {
  for (const [name, dir] of Object.entries(images)) {
    if (!existsSync(join(dir, "bin")) && !existsSync(join(dir, "usr"))) {
      throw new ConfigError(
        `--rootfs-image ${name}=${dir}: ${dir} is not a root filesystem (no bin/ or usr/)`,
      );
    }
  }
}

/**
 * Images of the local backend: references the operator mapped to host root filesystems
 * (`--rootfs-image NAME=DIR`, image URI `rootfs:NAME`), then the image builder on this machine:
 * specs are got or built (build steps run in gVisor here; a line per step, then the step's output,
 * becomes the run's build log) and references are read from the store or pulled from their registry.
 * The locator handed back to the backend is `rootfs:NAME` or the image's manifest digest.
 */
export class LocalImages implements BackendImages {
  constructor(
    private readonly rootfsImages: Record<string, string>,
    private readonly builder: ImageBuilder,
  ) {}

  /**
   * Refuses a malformed source, and one that names a registry host this server may not contact
   * (`--registry` and `--allow-registry`), before any request is sent.
   */
  check(source: ImageSource, field: string): void {
    if (source.kind === "spec") {
      this.builder.registries.checkSpec(decodeImageSpec(source.spec, `${field}.spec`), `${field}.spec`);
    } else this.checkReference(source.uri, `${field}.uri`);
  }

  /** Refuses a malformed reference or one on a registry this server may not contact (invalid_argument naming `field`). */
  checkReference(uri: string, field: string): void {
    if (this.rootfsImages[uri]) return;
    checkImageReference(uri, field);
    this.builder.registries.checkReference(uri, field);
  }

  async resolve(
    source: ImageSource,
    environment: string,
    onLog: (line: BuildLogLine) => void,
    signal: AbortSignal,
  ): Promise<BackendImage> {
    if (source.kind === "uri") {
      if (this.rootfsImages[source.uri]) {
        return {
          imageUri: `${ROOTFS}${source.uri}`,
          digest: "",
          locator: `${ROOTFS}${source.uri}`,
          env: {},
          workdir: undefined,
          entrypoint: [],
          cached: true,
        };
      }
      return backendImage(await this.builder.resolveReference(source.uri, "spec.image.uri"));
    }
    let steps = 0;
    const image = await this.builder.resolve(decodeImageSpec(source.spec, "spec.image.spec"), {
      environment,
      signal,
      onEvent(e) {
        if (e.type === "step") {
          steps = e.count;
          const mark = e.cached ? " (cached)" : "";
          onLog({ step: e.index, steps, text: `[step ${e.index + 1}/${e.count}] ${e.description}${mark}\n` });
        } else if (e.type === "log") {
          onLog({ step: e.step, steps, text: e.text });
        }
      },
    });
    return backendImage(image);
  }

  /** The root filesystem layers (host directories, bottom first) of a locator from {@link resolve}. */
  async rootfs(locator: string): Promise<string[]> {
    if (locator.startsWith(ROOTFS)) {
      const dir = this.rootfsImages[locator.slice(ROOTFS.length)];
      if (!dir)
        throw new ChalkError(
          Code.NotFound,
          `image ${JSON.stringify(locator)} is not configured on this server`,
        );
      return [dir];
    }
    return this.builder.rootfs(locator);
  }
}

function backendImage(i: ResolvedImage): BackendImage {
  return {
    imageUri: i.imageUri,
    digest: i.digest,
    locator: i.manifestDigest,
    env: i.env,
    workdir: i.workdir,
    entrypoint: i.entrypoint,
    cached: i.cached,
  };
}
