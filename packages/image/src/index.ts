/**
 * `@chalk/image`: immutable, content-addressed image specs. Build them with the image service
 * ({@link ImageClient}) or hand them to a `Container`; hosts build them with `@chalk/image/builder`.
 *
 * @example
 * ```ts
 * import { Image } from "@chalk/image";
 *
 * const image = Image.debianSlim("3.11")
 *   .aptInstall(["curl"])
 *   .pipInstall(["requests"])
 *   .env({ LOG_LEVEL: "INFO" })
 *   .workdir("/app")
 *   .addLocalDir("./src", "/app", { strategy: "copy" });
 * console.log(await image.digest());
 * console.log(image.toDockerfile());
 * ```
 *
 * @packageDocumentation
 */

// For SDK users.
export type { BuildLogStream, ImageBuildEvent, ImageBuildInfo, ImageBuildStatus } from "./build-events.js";
export {
  Image,
  type ImageAddLocalDirOptions,
  type ImageAddLocalFileOptions,
  type ImageLocalUpload,
  type ImagePipInstallOptions,
  type ImageToSpecOptions,
  type LocalFileStrategy,
} from "./image.js";
export {
  ImageClient,
  type ImageClientOptions,
  type ImageGetOrBuildOptions,
  type ImageListOptions,
} from "./image-client.js";
// For other libraries (the container layer, servers): the canonical spec and its validation.
export { formatReference, type ImageReference, parseReference, REFERENCE_FORMS } from "./reference.js";
export {
  type CanonicalSpecOptions,
  canonicalSpec,
  decodeImageSpec,
  encodeImageSpec,
  MAX_FILES,
  MAX_STEPS,
  specDigest,
} from "./spec.js";
export { DEFAULT_PYTHON_VERSION, PYTHON_VERSIONS } from "./validation.js";
