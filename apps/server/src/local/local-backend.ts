import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { ImageBuilder, imageServiceImpl } from "@chalk/image/builder";
import { ImageService } from "@chalk/proto/image/v1";
import { SecretService } from "@chalk/proto/secrets/v1";
import { VolumeService } from "@chalk/proto/volume/v1";
import { defaultRunscPath, LocalRuntime } from "@chalk/sandbox/local";
import { sandboxesFromImages } from "@chalk/sandbox/server";
import { secretServiceImpl } from "@chalk/secrets/host";
import { volumeServiceImpl } from "@chalk/volume/host";
import type { Logger } from "pino";
import type { BackendContainer, ComputeBackend, ContainerLaunch } from "../backend/compute-backend.js";
import { hostSecrets, hostVolumes, openHostStores } from "../backend/host-stores.js";
import type { SqliteContainerRecords } from "../backend/sqlite-container-records.js";
import type { ServerConfig } from "../config.js";
import type { ServiceAdder } from "../service-adder.js";
import { FILES_AGENT_MOUNT, FILES_AGENT_PATH, stageFilesAgent } from "./fs-agent-binary.js";
import { localCapacity } from "./local-capacity.js";
import { LocalContainer } from "./local-container.js";
import { checkRootfsImages, LocalImages } from "./local-images.js";
import { LocalLogStore } from "./local-logs.js";
import { LocalMounts } from "./local-mounts.js";
import { LogRetention } from "./log-retention.js";

/** The label that marks a sandbox as a container's (value: the container id). */
export const CONTAINER_LABEL = "chalk.container";
/** The label the sandbox service scopes sandboxes by (same as `@chalk/sandbox/server`'s). */
export const ENVIRONMENT_LABEL = "chalk.environment";

/**
 * The embedded backend: every container is a gVisor sandbox on this machine (`LocalRuntime`, state
 * in `<dataDir>/sandboxes`, persistent so a restarted server adopts running containers). The rest
 * of a container's state lives in the data dir too: records in `chalk.db` (SQLite), kept logs in
 * `logs/`, volumes in `volumes/`, secrets in `secrets.db` (key in `secrets.db.key`); images come from
 * `--rootfs-image` root filesystems and the image builder (`--images-dir`), whose steps run in gVisor
 * here. Containers and build steps run on `--runsc` (default: the pinned build in the cache).
 */
export async function localBackend(config: ServerConfig, log: Logger): Promise<ComputeBackend> {
  checkRootfsImages(config.rootfsImages);
  const stateDir = join(config.dataDir, "sandboxes");
  const logsDir = join(config.dataDir, "logs");
  const runscPath = config.runsc ?? defaultRunscPath();
  const runtime = new LocalRuntime({ stateDir, runscPath });
  // A missing runsc, or one of another version than the pinned build, stops the server at start.
  await runtime.checkRunsc();
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await mkdir(logsDir, { recursive: true, mode: 0o700 });
  const stores = await openHostStores(config);
  const { records, secretStore, volumeStore } = stores;
  const builder = await ImageBuilder.open({
    storeDir: config.imagesDir,
    // Build steps get a runtime of their own (state beside the store, as ImageBuilder's default),
    // on the same runsc.
    runtime: new LocalRuntime({ stateDir: join(config.imagesDir, "chalk", "sandboxes"), runscPath }),
    stepMemory: config.build.memory,
    stepCpu: config.build.cpu,
    stepPids: config.build.pids,
    ...(config.registry ? { registry: { address: config.registry } } : {}),
    // Image references and registry bases reach only the registries the configuration names.
    allowedRegistries: config.allowedRegistries,
  });
  const images = new LocalImages(config.rootfsImages, builder);
  const logs = new LocalLogStore(logsDir, config.containerLogMaxBytes);
  // Logs of finished containers: the newest per environment, for a limited time.
  const retention = new LogRetention(
    logsDir,
    records,
    { keep: config.finishedLogRetention, maxAgeSecs: config.finishedLogMaxAgeSecs },
    log,
  );
  // Sweeps every 10 minutes, or twice per maximum age when that is shorter.
  const maxAgeMs = config.finishedLogMaxAgeSecs * 1000;
  retention.start(maxAgeMs > 0 ? Math.min(600_000, Math.max(500, maxAgeMs / 2)) : 600_000);
  const mounts = new LocalMounts(volumeStore, join(config.dataDir, "mounts"));
  const agentDir = await stageFilesAgent(runscPath, config.dataDir);
  if (!agentDir)
    log.warn("chalk-fs-agent is not built (bash tooling/gvisor/build.sh fs-agent): no files API");
  const filesAgentPath = agentDir ? FILES_AGENT_PATH : undefined;
  await mounts.recover();
  log.debug({ dataDir: config.dataDir, imagesDir: config.imagesDir }, "local backend open");

  const secrets = hostSecrets(secretStore);
  const volumes = hostVolumes(volumeStore);

  return {
    name: "local",
    // Pause and resume, snapshots, warm pools, egress policy and detached execs are not
    // built yet (issues 15 and 16).
    capabilities: new Set(agentDir ? ["port-forward", "files"] : ["port-forward"]),
    records,
    logs,
    secrets,
    volumes,
    images,
    // The sandbox service's sandboxes start from the same image references containers take,
    // resolved in this server's own store: a client never names a host path.
    sandboxes: sandboxesFromImages(runtime, async (image) => {
      images.checkReference(image, "spec.image");
      const resolved = await images.resolve(
        { kind: "uri", uri: image },
        "",
        () => undefined,
        AbortSignal.timeout(600_000),
      );
      return { rootfs: await images.rootfs(resolved.locator), env: resolved.env, workdir: resolved.workdir };
    }),

    async createContainer(launch: ContainerLaunch, signal: AbortSignal): Promise<BackendContainer> {
      signal.throwIfAborted();
      const rootfs = await images.rootfs(launch.image.locator);
      // Secret values go straight into the sandbox's process environment, never into a record.
      const secretEnv = secretStore.resolve(launch.environment, launch.secrets, { owner: launch.id });
      const sources = await mounts.prepare(launch.id, launch.environment, launch.mounts);
      try {
        signal.throwIfAborted();
        const sandbox = await runtime.create({
          id: launch.id,
          rootfs,
          ...(launch.command.length > 0
            ? { command: launch.command, logPath: logs.path(launch.id), logMaxBytes: logs.maxBytes }
            : {}),
          ...(launch.resources.diskBytes === undefined ? {} : { disk: String(launch.resources.diskBytes) }),
          env: { ...launch.env, ...secretEnv },
          ...(launch.image.workdir ? { workdir: launch.image.workdir } : {}),
          cpu: `${launch.resources.cpuMillis}m`,
          memory: String(launch.resources.memoryBytes),
          ...(launch.port ? { network: { ports: [launch.port] } } : {}),
          mounts: agentDir
            ? [...sources, { source: agentDir, target: FILES_AGENT_MOUNT, readOnly: true }]
            : sources,
          labels: { [CONTAINER_LABEL]: launch.id, [ENVIRONMENT_LABEL]: launch.environment },
        });
        const info = await sandbox.info();
        const container = new LocalContainer(launch.id, sandbox, info.address, launch.port, filesAgentPath);
        // A container that ended may push an older finished log out of the retention window.
        void container.ended().then(() => retention.schedule());
        return container;
      } finally {
        // The sandbox holds its own copies of the mounts now (or never started): unstage them.
        await mounts.release(launch.id);
      }
    },

    async adoptContainer(id: string): Promise<BackendContainer> {
      const sandbox = await runtime.get(id);
      const info = await sandbox.info();
      if (!info.labels[CONTAINER_LABEL])
        throw new ChalkError(Code.NotFound, `container ${JSON.stringify(id)} not found`);
      const port = info.address ? await portOf(records, id) : undefined;
      const container = new LocalContainer(id, sandbox, info.address, port, filesAgentPath);
      void container.ended().then(() => retention.schedule());
      return container;
    },

    async listContainers(): Promise<string[]> {
      const list = await runtime.list({});
      return list.filter((i) => i.labels[CONTAINER_LABEL]).map((i) => i.labels[CONTAINER_LABEL] as string);
    },

    async capacity() {
      return localCapacity();
    },

    mountServices(add: ServiceAdder) {
      add(VolumeService, volumeServiceImpl(volumeStore));
      add(SecretService, secretServiceImpl(secretStore));
      add(ImageService, imageServiceImpl(builder));
    },

    async close() {
      retention.close();
      await builder.close();
      await stores.close();
    },
  };
}

async function portOf(records: SqliteContainerRecords, id: string): Promise<number | undefined> {
  const r = await records.get(id);
  return r?.port || undefined;
}
