import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { ImageBuilder, imageServiceImpl } from "@chalk/image/builder";
import { ImageService } from "@chalk/proto/image/v1";
import { SecretService } from "@chalk/proto/secrets/v1";
import { defaultRunscPath, LocalRuntime } from "@chalk/sandbox/local";
import { SecretStore, secretServiceImpl } from "@chalk/secrets/host";
import type { VolumeStore } from "@chalk/volume/host";
import type { Logger } from "pino";
import { builderImages } from "./builder-images.js";
import type { ServerConfig } from "./config.js";
import { rootfsImages } from "./images.js";
import type { Backend } from "./server.js";

/**
 * The embedded backend: gVisor sandboxes on this machine (runsc state under `<dataDir>/sandboxes`,
 * persistent, so a restarted server reattaches), images from `--images-dir`, secrets in
 * `<dataDir>/secrets.db` (key in `secrets.db.key`). Containers and build steps run on `--runsc`
 * (default: the pinned build in the cache); a missing runsc or one of another version stops the
 * server at start with the setup command.
 */
export async function localBackend(
  config: ServerConfig,
  _volumes: VolumeStore,
  _log: Logger,
): Promise<Backend> {
  const runscPath = config.runsc ?? defaultRunscPath();
  const runtime = new LocalRuntime({ stateDir: join(config.dataDir, "sandboxes"), runscPath });
  await runtime.checkRunsc();
  const secrets = await SecretStore.open({ path: join(config.dataDir, "secrets.db") });
  await mkdir(runtime.stateDir, { recursive: true, mode: 0o700 });
  const builder = await ImageBuilder.open({
    storeDir: config.imagesDir,
    // Build steps get a runtime of their own (state beside the store, as ImageBuilder's default),
    // on the same runsc.
    runtime: new LocalRuntime({ stateDir: join(config.imagesDir, "chalk", "sandboxes"), runscPath }),
    stepMemory: config.build.memory,
    stepCpu: config.build.cpu,
    stepPids: config.build.pids,
    ...(config.registry ? { registry: { address: config.registry } } : {}),
  });
  return {
    runtime,
    images: rootfsImages(config.rootfsImages, builderImages(builder)),
    secrets,
    rootfsRoots: [config.imagesDir],
    mount(add) {
      add(SecretService, secretServiceImpl(secrets));
      add(ImageService, imageServiceImpl(builder));
    },
    async close() {
      await builder.close();
      secrets.close();
    },
  };
}
