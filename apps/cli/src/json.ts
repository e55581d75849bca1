/**
 * The JSON shapes of `-o json` and `chalk inspect`: explicit field lists with ISO 8601 times, so
 * the output stays stable when the SDK's objects grow.
 */
import type { ContainerRecord } from "@chalk/container";
import type { ImageBuildInfo } from "@chalk/image";
import type { SecretInfo } from "@chalk/secrets";
import type { VolumeFileInfo, VolumeInfo } from "@chalk/volume";

const iso = (d: Date | undefined) => (d ? d.toISOString() : null);

/** A container. */
export function containerJson(c: ContainerRecord) {
  return {
    id: c.id,
    name: c.name,
    status: c.status,
    statusMessage: c.statusMessage,
    createdAt: iso(c.createdAt),
    stoppedAt: iso(c.stoppedAt),
    exitCode: c.exitCode ?? null,
    image: { uri: c.imageUri, specDigest: c.imageDigest || null },
    resources: {
      cpuMillis: c.resources.cpuMillis,
      memoryBytes: c.resources.memoryBytes,
      gpu: c.resources.gpu ?? null,
    },
    address: c.address ?? null,
    port: c.port ?? null,
    entrypoint: c.entrypoint,
    env: c.env,
    secrets: c.secrets,
    volumes: c.volumes,
    sandboxId: c.sandboxId || null,
  };
}

/** A volume. */
export function volumeJson(v: VolumeInfo) {
  return { name: v.name, createdAt: iso(v.createdAt) };
}

/** A file in a volume. */
export function volumeFileJson(f: VolumeFileInfo) {
  return { path: f.path, size: f.size, mode: f.mode, modifiedAt: iso(f.modifiedAt) };
}

/** A secret (never its value). */
export function secretJson(s: SecretInfo) {
  return { name: s.name, createdAt: iso(s.createdAt), updatedAt: iso(s.updatedAt) };
}

/** An image. */
export function imageJson(i: ImageBuildInfo) {
  return {
    specDigest: i.specDigest,
    status: i.status,
    imageUri: i.imageUri,
    manifestDigest: i.manifestDigest || null,
    sizeBytes: i.sizeBytes,
    layerCount: i.layerCount,
    message: i.message || null,
    updatedAt: iso(i.updatedAt),
  };
}
