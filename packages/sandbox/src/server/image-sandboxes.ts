import { invalidArgument } from "@chalk/core";
import type { SandboxCreateOptions, SandboxRuntime } from "../types.js";
import { refuseHostPaths } from "../wire.js";

/** A resolved image as {@link sandboxesFromImages} needs it: root filesystem layers and run configuration. */
export interface ImageRootfs {
  /** Layer directories, bottom first (read-only). */
  rootfs: string[];
  /** The image's environment (the sandbox's `env` goes over it). */
  env: Record<string, string>;
  /** The image's working directory, if it sets one. */
  workdir: string | undefined;
}

/**
 * A runtime whose sandboxes start from image references, for hosts that serve sandboxes to
 * clients: `create({ image })` resolves the reference with `resolve` (in the host's own image
 * store) and creates the sandbox over the resulting layers on `runtime`. Options that name host
 * paths are refused with invalid_argument, whoever calls.
 *
 * @example
 * ```ts
 * const sandboxes = sandboxesFromImages(new LocalRuntime(), async (image) => {
 *   const i = await builder.resolveReference(image);
 *   return { rootfs: i.rootfs, env: i.env, workdir: i.workdir };
 * });
 * addService(server, SandboxService, sandboxServiceImpl(sandboxes));
 * ```
 */
export function sandboxesFromImages(
  runtime: SandboxRuntime,
  resolve: (image: string) => Promise<ImageRootfs>,
): SandboxRuntime {
  return {
    get: (id) => runtime.get(id),
    list: (options) => runtime.list(options),
    async create(options: SandboxCreateOptions) {
      refuseHostPaths(options);
      const { image, ...rest } = options;
      if (!image) throw invalidArgument("image", "required", "an image reference, as a Container takes it");
      const resolved = await resolve(image);
      const workdir = rest.workdir ?? resolved.workdir;
      return runtime.create({
        ...rest,
        rootfs: resolved.rootfs,
        env: { ...resolved.env, ...(rest.env ?? {}) },
        ...(workdir ? { workdir } : {}),
      });
    },
  };
}
