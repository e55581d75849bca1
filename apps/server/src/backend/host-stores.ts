/**
 * The seam's secrets and volumes over the host stores (`@chalk/secrets/host`, `@chalk/volume/host`),
 * shared by every backend that keeps them in the server's data dir (local and Kubernetes).
 */
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { SecretStore } from "@chalk/secrets/host";
import { VolumeStore } from "@chalk/volume/host";
import type { ServerConfig } from "../config.js";
import type { BackendSecrets, BackendVolumes } from "./compute-backend.js";
import { SqliteContainerRecords } from "./sqlite-container-records.js";

/** The stores a backend keeps in the server's data dir, opened by {@link openHostStores}. */
export interface HostStores {
  /** Container records (`chalk.db`). */
  records: SqliteContainerRecords;
  /** Secrets, encrypted at rest (`secrets.db`). */
  secretStore: SecretStore;
  /** Volumes (`volumes/`), each a disk of `--volume-quota` unless that is `none`. */
  volumeStore: VolumeStore;
  /** Closes the three. */
  close(): Promise<void>;
}

/**
 * Opens the records, secret and volume stores under `config.dataDir`, the same way for every
 * backend that keeps them there (local and Kubernetes): volumes get `config.volumeQuotaBytes` as
 * their disk size. When one fails to open, those already open are closed before the error is thrown.
 */
export async function openHostStores(
  config: Pick<ServerConfig, "dataDir" | "volumeQuotaBytes">,
): Promise<HostStores> {
  const records = SqliteContainerRecords.open(join(config.dataDir, "chalk.db"));
  let secretStore: SecretStore | undefined;
  try {
    secretStore = await SecretStore.open({ path: join(config.dataDir, "secrets.db") });
    const volumeStore = await VolumeStore.open({
      dataDir: join(config.dataDir, "volumes"),
      ...(config.volumeQuotaBytes === undefined ? {} : { quotaBytes: config.volumeQuotaBytes }),
    });
    const secrets = secretStore;
    return {
      records,
      secretStore: secrets,
      volumeStore,
      async close() {
        await volumeStore.close();
        secrets.close();
        records.close();
      },
    };
  } catch (err) {
    secretStore?.close();
    records.close();
    throw err;
  }
}

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
