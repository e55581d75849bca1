/**
 * The seam's secrets and volumes over the host stores (`@chalk/secrets/host`, `@chalk/volume/host`),
 * shared by every backend that keeps them in the server's data dir (local and Kubernetes).
 */
import { ChalkError, Code } from "@chalk/core";
import type { SecretStore } from "@chalk/secrets/host";
import type { VolumeStore } from "@chalk/volume/host";
import type { BackendSecrets, BackendVolumes } from "./compute-backend.js";

/** {@link BackendSecrets} over a {@link SecretStore}: temporary values, checks and cleanup by owner. */
export function hostSecrets(store: SecretStore): BackendSecrets {
  return {
    async setTemporary(environment, owner, name, value) {
      store.setTemporary(environment, owner, name, value);
    },
    async check(environment, refs, owner) {
      store.resolve(environment, refs, { owner });
    },
    async deleteOwner(environment, owner) {
      store.deleteOwner(environment, owner);
    },
  };
}

/** {@link BackendVolumes} over a {@link VolumeStore}; deleting a volume that is gone does nothing. */
export function hostVolumes(store: VolumeStore): BackendVolumes {
  return {
    async require(environment, name) {
      await store.get(environment, name);
    },
    async create(environment, name) {
      await store.create(environment, name);
    },
    async delete(environment, name) {
      await store.delete(environment, name).catch((err: unknown) => {
        if (ChalkError.from(err).code !== Code.NotFound) throw err;
      });
    },
  };
}
