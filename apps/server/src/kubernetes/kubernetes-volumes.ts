import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import type { VolumeStore } from "@chalk/volume/host";
import type { CoreV1Api } from "@kubernetes/client-node";
import type { VolumeMountRequest } from "../backend/compute-backend.js";
import { withRetry } from "./kubernetes-errors.js";
import { ENVIRONMENT_ANNOTATION } from "./kubernetes-names.js";

/** The claim, in every environment's namespace, that holds the environment's volumes. */
export const VOLUMES_CLAIM = "chalk-volumes";
/** The storage class name that binds the claim to its own PersistentVolume only. */
const STORAGE_CLASS = "chalk-volumes";

/**
 * Volumes on Kubernetes, without a provisioner: the server's volume store is the storage. Each
 * environment gets one PersistentVolume (cluster-scoped, `chalk-volumes-<namespace>`) over the
 * store's directory of that environment, pre-bound (`claimRef`) to one PersistentVolumeClaim
 * (`chalk-volumes`) in the environment's namespace; a container mounts each of its volumes by
 * `subPath` (`<volume>/data/<path>`). Before the Pod is made, every (volume, path) is resolved in
 * the store without following any symlink ({@link VolumeStore.openMountSource}), so a link a
 * container planted is refused, as on the local backend; the kubelet's own subPath handling then
 * refuses a path that leaves the volume.
 *
 * On the single-node test cluster the volume is a `hostPath` over the store's directory (the
 * server runs on the node). On several nodes the store must live on storage every node and the
 * server share (ReadWriteMany: NFS, CephFS, a cloud filestore) mounted at the same path.
 */
export class KubernetesVolumes {
  readonly #ready = new Map<string, Promise<void>>();

  constructor(
    private readonly core: CoreV1Api,
    private readonly store: VolumeStore,
    /** The store's directory of environments (`<data dir>/volumes/volumes`). */
    private readonly root: string,
    /** Labels on what it makes. */
    private readonly labels: Record<string, string>,
  ) {}

  /** Checks every mount and makes sure the environment's volume and claim exist; returns the claim. */
  async prepare(
    environment: string,
    namespace: string,
    mounts: readonly VolumeMountRequest[],
  ): Promise<string> {
    for (const m of mounts) {
      try {
        const pinned = await this.store.openMountSource(environment, m.volume, m.subPath);
        await pinned.close();
      } catch (err) {
        const e = ChalkError.from(err);
        throw e.code === Code.NotFound || e.code === Code.FailedPrecondition
          ? new ChalkError(e.code, `volume mount: ${e.rawMessage}`, { cause: err })
          : e;
      }
    }
    let p = this.#ready.get(namespace);
    if (!p) {
      p = this.#ensure(environment, namespace);
      p.catch(() => this.#ready.delete(namespace));
      this.#ready.set(namespace, p);
    }
    await p;
    return VOLUMES_CLAIM;
  }

  async #ensure(environment: string, namespace: string): Promise<void> {
    const pvName = `chalk-volumes-${namespace}`;
    const labels = this.labels;
    const annotations = { [ENVIRONMENT_ANNOTATION]: environment };
    const exists = (err: unknown) => {
      if (ChalkError.from(err).code !== Code.AlreadyExists) throw err;
    };
    await withRetry(`creating PersistentVolume ${pvName}`, () =>
      this.core.createPersistentVolume({
        body: {
          metadata: { name: pvName, labels, annotations },
          spec: {
            capacity: { storage: "1Ti" },
            accessModes: ["ReadWriteMany"],
            persistentVolumeReclaimPolicy: "Retain",
            storageClassName: STORAGE_CLASS,
            hostPath: { path: join(this.root, environment), type: "DirectoryOrCreate" },
            claimRef: { namespace, name: VOLUMES_CLAIM },
          },
        },
      }),
    ).catch(exists);
    await withRetry(`creating PersistentVolumeClaim ${namespace}/${VOLUMES_CLAIM}`, () =>
      this.core.createNamespacedPersistentVolumeClaim({
        namespace,
        body: {
          metadata: { name: VOLUMES_CLAIM, labels, annotations },
          spec: {
            accessModes: ["ReadWriteMany"],
            storageClassName: STORAGE_CLASS,
            volumeName: pvName,
            resources: { requests: { storage: "1Ti" } },
          },
        },
      }),
    ).catch(exists);
  }

  /** The PersistentVolume name of a namespace (tests delete it: it is cluster-scoped). */
  static volumeNameOf(namespace: string): string {
    return `chalk-volumes-${namespace}`;
  }
}
