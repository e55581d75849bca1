/**
 * `@chalk/volume`: durable named volumes. Put files in from anywhere, mount the volume into
 * sandboxes and containers, read back what they wrote. The server side lives in
 * `@chalk/volume/host`.
 *
 * @example
 * ```ts
 * import { Volume } from "@chalk/volume";
 *
 * const vol = new Volume("training-data");
 * await vol.putFile("inputs/example.txt", "hello\n");
 * await vol.putFileFromPath("weights.bin", "./out/weights.bin"); // streamed
 * const text = new TextDecoder().decode(await vol.readFile("inputs/example.txt"));
 * ```
 *
 * @packageDocumentation
 */

// For other libraries (the container layer, the server): validation shared with the host side.
export { checkEnvironment, checkVolumeName, VOLUME_NAME_FORM, VOLUME_NAME_PATTERN } from "./names.js";
export type { Page, VolumeFileInfo, VolumeInfo } from "./types.js";
export type { VolumeUploadOptions, VolumeUploadProgress } from "./upload-progress.js";
export { UPLOAD_CHUNK_BYTES } from "./upload-source.js";
export {
  Volume,
  type VolumeBatch,
  type VolumeCreateOptions,
  type VolumeOptions,
  type VolumePutDirOptions,
  type VolumePutFileOptions,
  type VolumeReadToPathOptions,
  type VolumeRemoveFileOptions,
} from "./volume.js";
export {
  MAX_COMPONENT_BYTES,
  MAX_PATH_BYTES,
  parseVolumeDir,
  parseVolumePath,
  parseVolumePrefix,
} from "./volume-path.js";
