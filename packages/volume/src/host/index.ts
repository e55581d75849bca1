/**
 * `@chalk/volume/host`: the server side of volumes — the on-disk {@link VolumeStore} that sandboxes
 * bind-mount, and the gRPC service implementation a server mounts with `addService`.
 *
 * @example
 * ```ts
 * import { addService, listen } from "@chalk/rpc";
 * import { VolumeService } from "@chalk/proto/volume/v1";
 * import { VolumeStore, volumeServiceImpl } from "@chalk/volume/host";
 *
 * const store = await VolumeStore.open({ dataDir: "/var/lib/chalk" });
 * await listen({ address: "127.0.0.1:50051", register: (s) => addService(s, VolumeService, volumeServiceImpl(store)) });
 * const source = await store.hostPath("default", "training-data"); // mount into a sandbox
 * ```
 *
 * @packageDocumentation
 */

export type { Page, VolumeFileInfo, VolumeInfo } from "../types.js";
export { VolumeStoreBatch } from "./volume-batch.js";
export { fileInfoToProto, volumeInfoToProto, volumeServiceImpl } from "./volume-service.js";
export { VolumeStore } from "./volume-store.js";
export {
  DEFAULT_READ_CHUNK_BYTES,
  type VolumeFileReader,
  type VolumeFileSource,
  type VolumeStoreCreateOptions,
  type VolumeStoreListFilesOptions,
  type VolumeStoreListOptions,
  type VolumeStoreOpenOptions,
  type VolumeStorePutOptions,
  type VolumeStoreRemoveOptions,
} from "./volume-store-options.js";
