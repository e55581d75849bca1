/**
 * `@chalk/image/builder`: the host side of images. {@link ImageBuilder} turns specs into OCI images
 * in a content-addressed store, running each step in a gVisor sandbox, and gives sandboxes their
 * root filesystems; {@link imageServiceImpl} serves it as `chalk.image.v1.ImageService`. Needs root,
 * runsc, GNU tar and flock; debootstrap for local Debian bases.
 *
 * @example
 * ```ts
 * import { Image } from "@chalk/image";
 * import { ImageBuilder } from "@chalk/image/builder";
 * import { LocalRuntime } from "@chalk/sandbox/local";
 *
 * await using builder = await ImageBuilder.open({ storeDir: "/var/lib/chalk/images" });
 * const image = await builder.resolve(Image.debianSlim("3.11").pipInstall(["requests"]));
 * const runtime = new LocalRuntime();
 * await using sandbox = await runtime.create({ rootfs: image.rootfs, env: image.env });
 * console.log((await sandbox.exec("python", "-c", "import requests; print(requests.__version__)")).stdoutText);
 * ```
 *
 * @packageDocumentation
 */

export { describeStep } from "./build-steps.js";
export { DEBIAN_PYTHON_SUITES, VENV_DIR } from "./debian-base.js";
export { ImageBuilder } from "./image-builder.js";
export type {
  ImageBuilderBuildOptions,
  ImageBuilderOpenOptions,
  ImageBuilderRegistryOptions,
  ResolvedImage,
} from "./image-builder-options.js";
export {
  builderImageProvider,
  type ImageBuildLogLine,
  type ImageSourceInput,
  type ImageSourceProvider,
} from "./image-provider.js";
export { imageServiceImpl } from "./image-service.js";
export { LAYER_MEDIA_TYPE, type LayerCompression } from "./layers.js";
export { type Descriptor, type ImageConfig, type ImageManifest, MEDIA_TYPE } from "./oci-store.js";
export { RegistryClient, type RegistryOptions } from "./registry-client.js";
export { RegistryPolicy } from "./registry-policy.js";
export { DEFAULT_STEP_LIMITS, type StepLimits } from "./step-limits.js";
