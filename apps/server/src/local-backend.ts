import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { SecretService } from "@chalk/proto/secrets/v1";
import type { SandboxRuntime } from "@chalk/sandbox";
import { SecretStore, secretServiceImpl } from "@chalk/secrets/host";
import type { VolumeStore } from "@chalk/volume/host";
import type { Logger } from "pino";
import type { ServerConfig } from "./config.js";
import { noImages } from "./images.js";
import type { Backend } from "./server.js";

const unavailable = (): never => {
  throw new ChalkError(Code.Unavailable, "the local sandbox runtime is not available in this build");
};

/**
 * The embedded backend: gVisor sandboxes on this machine (runsc state under `<dataDir>/sandboxes`),
 * images built here (`<dataDir>/images`), secrets in `<dataDir>/secrets.db`.
 */
export async function localBackend(
  config: ServerConfig,
  _volumes: VolumeStore,
  _log: Logger,
): Promise<Backend> {
  const secrets = await SecretStore.open({ path: join(config.dataDir, "secrets.db") });
  const runtime: SandboxRuntime = { create: unavailable, get: unavailable, list: async () => [] };
  return {
    runtime,
    images: noImages,
    secrets,
    rootfsRoots: [config.imagesDir],
    mount(add) {
      add(SecretService, secretServiceImpl(secrets));
    },
    async close() {
      secrets.close();
    },
  };
}
