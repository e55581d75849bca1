import { ChalkError, Code } from "@chalk/core";
import { LAYER_MEDIA_TYPE } from "./layers.js";
import {
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  MEDIA_TYPE,
  type OciStore,
} from "./oci-store.js";
import type { RegistryClient } from "./registry-client.js";

const DOCKER_LAYER_TYPES: Record<string, string> = {
  "application/vnd.docker.image.rootfs.diff.tar.gzip": LAYER_MEDIA_TYPE.gzip,
  "application/vnd.docker.image.rootfs.diff.tar": LAYER_MEDIA_TYPE.tar,
  [LAYER_MEDIA_TYPE.gzip]: LAYER_MEDIA_TYPE.gzip,
  [LAYER_MEDIA_TYPE.tar]: LAYER_MEDIA_TYPE.tar,
};

/** A pulled or local image: its manifest, config and where the manifest is in the store. */
export interface StoredImage {
  manifestDigest: string;
  manifest: ImageManifest;
  config: ImageConfig;
}

async function fetchBlobInto(
  client: RegistryClient,
  store: OciStore,
  repository: string,
  d: Descriptor,
): Promise<void> {
  if (await store.hasBlob(d.digest)) return;
  const tmp = store.tempPath();
  await client.downloadBlob(repository, d.digest, tmp);
  await store.adoptBlob(tmp, d.digest);
}

/**
 * Pulls an image (linux/amd64 from an index) into the store: config and layers verified by digest,
 * then an OCI manifest (Docker media types translated; the bytes are the same) written locally.
 * Returns the local manifest digest.
 */
export async function pullImage(
  client: RegistryClient,
  store: OciStore,
  repository: string,
  reference: string,
  onLog?: (text: string) => void,
): Promise<StoredImage> {
  let fetched = await client.getManifest(repository, reference);
  if (fetched.mediaType === MEDIA_TYPE.index || fetched.mediaType === MEDIA_TYPE.dockerManifestList) {
    const index = JSON.parse(fetched.bytes.toString("utf8")) as { manifests: Descriptor[] };
    const pick = index.manifests.find(
      (m) => m.platform?.os === "linux" && m.platform.architecture === "amd64",
    );
    if (!pick) {
      throw new ChalkError(
        Code.FailedPrecondition,
        `${client.address}/${repository}:${reference} has no linux/amd64 image`,
      );
    }
    fetched = await client.getManifest(repository, pick.digest);
  }
  const remote = JSON.parse(fetched.bytes.toString("utf8")) as ImageManifest;
  if (!remote.config || !Array.isArray(remote.layers)) {
    throw new ChalkError(
      Code.FailedPrecondition,
      `${client.address}/${repository}:${reference} is not an image manifest`,
    );
  }
  onLog?.(`pulling ${client.address}/${repository}:${reference} (${remote.layers.length} layers)\n`);
  await fetchBlobInto(client, store, repository, remote.config);
  for (const layer of remote.layers) {
    if (!DOCKER_LAYER_TYPES[layer.mediaType]) {
      throw new ChalkError(
        Code.FailedPrecondition,
        `layer ${layer.digest} has the unsupported media type ${layer.mediaType}`,
      );
    }
    await fetchBlobInto(client, store, repository, layer);
  }
  // An OCI manifest is kept byte for byte (same digest as in the registry); a Docker one is
  // rewritten with the OCI media types of the same blobs.
  const isOci =
    fetched.mediaType === MEDIA_TYPE.manifest &&
    remote.config.mediaType === MEDIA_TYPE.config &&
    remote.layers.every((l) => DOCKER_LAYER_TYPES[l.mediaType] === l.mediaType);
  const manifest: ImageManifest = isOci
    ? remote
    : {
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.manifest,
        config: { mediaType: MEDIA_TYPE.config, digest: remote.config.digest, size: remote.config.size },
        layers: remote.layers.map((l) => ({
          mediaType: DOCKER_LAYER_TYPES[l.mediaType]!,
          digest: l.digest,
          size: l.size,
        })),
      };
  const config = await store.readJson<ImageConfig>(remote.config.digest);
  if (config.rootfs?.diff_ids?.length !== manifest.layers.length) {
    throw new ChalkError(
      Code.DataLoss,
      `${repository}:${reference}: the config lists ${config.rootfs?.diff_ids?.length} layers, the manifest ${manifest.layers.length}`,
    );
  }
  const desc = isOci
    ? await store.putBytes(MEDIA_TYPE.manifest, fetched.bytes)
    : await store.putJson(MEDIA_TYPE.manifest, manifest);
  return { manifestDigest: desc.digest, manifest, config };
}

/** Pushes a stored image (blobs, then the manifest by digest and under `tags`). */
export async function pushImage(
  client: RegistryClient,
  store: OciStore,
  repository: string,
  manifestDigest: string,
  tags: readonly string[],
): Promise<void> {
  const bytes = await store.readBlob(manifestDigest);
  const manifest = JSON.parse(bytes.toString("utf8")) as ImageManifest;
  for (const d of [...manifest.layers, manifest.config]) {
    await client.pushBlob(repository, d.digest, d.size, store.blobPath(d.digest));
  }
  await client.putManifest(repository, manifestDigest, manifest.mediaType, bytes);
  for (const tag of tags) await client.putManifest(repository, tag, manifest.mediaType, bytes);
}
