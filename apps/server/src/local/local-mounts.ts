import { join } from "node:path";
import type { SandboxMount } from "@chalk/sandbox";
import type { VolumeStore } from "@chalk/volume/host";
import type { VolumeMountRequest } from "../backend/compute-backend.js";

/**
 * Materialises a container's volume mounts on this machine: each (volume, subpath) becomes a host
 * directory the sandbox bind-mounts.
 */
export class LocalMounts {
  constructor(
    private readonly volumes: VolumeStore,
    readonly stagingDir: string,
  ) {}

  /** The host mounts of a container's volume mounts. */
  async prepare(
    _id: string,
    environment: string,
    mounts: readonly VolumeMountRequest[],
  ): Promise<SandboxMount[]> {
    const out: SandboxMount[] = [];
    for (const m of mounts) {
      const root = await this.volumes.hostPath(environment, m.volume);
      out.push({ source: join(root, ...m.subPath), target: m.target, readOnly: m.readOnly });
    }
    return out;
  }

  /** Releases what {@link prepare} made for a container. */
  async release(_id: string): Promise<void> {}
}
