import { ChalkError, Code } from "@chalk/core";
import type { UploadSpec, VolumeMountSpec } from "@chalk/spec";
import type { BackendVolumes, VolumeMountRequest } from "../backend/compute-backend.js";

/**
 * Checks that every named volume exists (not_found naming the volume and the field otherwise) and
 * returns the mounts to ask the backend for: each named volume at its root, then each directory of
 * the upload volume, read-only. Paths inside a volume are its normalized components; the backend
 * resolves them inside the volume without following symlinks.
 */
export async function resolveVolumeMounts(
  volumes: BackendVolumes,
  environment: string,
  named: readonly VolumeMountSpec[],
  upload: UploadSpec | undefined,
): Promise<VolumeMountRequest[]> {
  const mounts: VolumeMountRequest[] = [];
  for (const [i, v] of named.entries()) {
    await volumes.require(environment, v.name).catch((err: unknown) => {
      if (ChalkError.from(err).code !== Code.NotFound) throw err;
      throw new ChalkError(Code.NotFound, `spec.volumes[${i}]: volume ${JSON.stringify(v.name)} not found`, {
        field: `spec.volumes[${i}].name`,
      });
    });
    mounts.push({ volume: v.name, subPath: [], target: v.mountPath, readOnly: v.readOnly });
  }
  for (const t of upload?.targets ?? []) {
    mounts.push({
      volume: upload?.volumeName ?? "",
      subPath: t.source.split("/"),
      target: t.target,
      readOnly: true,
    });
  }
  return mounts;
}
