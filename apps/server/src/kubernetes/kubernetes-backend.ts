import { spawn } from "node:child_process";
import { mkdir, truncate } from "node:fs/promises";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { ImageBuilder, imageServiceImpl } from "@chalk/image/builder";
import { ImageService } from "@chalk/proto/image/v1";
import { SecretService } from "@chalk/proto/secrets/v1";
import { VolumeService } from "@chalk/proto/volume/v1";
import { defaultLogWriterPath, defaultRunscPath, LocalRuntime } from "@chalk/sandbox/local";
import { secretServiceImpl } from "@chalk/secrets/host";
import { volumeServiceImpl } from "@chalk/volume/host";
import { CoreV1Api, KubeConfig, Log, type V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import type { BackendContainer, ComputeBackend, ContainerLaunch } from "../backend/compute-backend.js";
import { hostSecrets, hostVolumes, openHostStores } from "../backend/host-stores.js";
import type { ServerConfig } from "../config.js";
import { LocalLogStore } from "../local/local-logs.js";
import type { ServiceAdder } from "../service-adder.js";
import { ApiRequestCounter } from "./api-request-counter.js";
import { KubernetesContainer } from "./kubernetes-container.js";
import { apiStatus, withRetry } from "./kubernetes-errors.js";
import { KubernetesImages } from "./kubernetes-images.js";
import {
  CONTAINER_ID_LABEL,
  ENVIRONMENT_ANNOTATION,
  INSTANCE_LABEL,
  MAIN_CONTAINER,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  namespaceOf,
  podNameOf,
  ROLE_LABEL,
  secretNameOf,
} from "./kubernetes-names.js";
import { KubernetesVolumes } from "./kubernetes-volumes.js";
import { nodeCapacity } from "./node-capacity.js";
import { OrphanSecretSweep } from "./orphan-secrets.js";
import { PodSandbox, SANDBOX_CONTAINER_LABEL } from "./pod-sandbox.js";
import { podSandboxes } from "./pod-sandboxes.js";
import { podFor, secretKeyFor } from "./pod-spec.js";
import { describeFailure, podProgress } from "./pod-status.js";
import { PodWatch } from "./pod-watch.js";

/** Annotation: the container's main process writes a log the server captures. */
const LOGS_ANNOTATION = "chalk.dev/logs";
/** How long a deleted Pod may take to go, beyond its grace period, in milliseconds. */
const DELETE_WAIT_MS = 60_000;

/** The Kubernetes backend's own settings (from `--kubeconfig`, `--registry`, …). */
export interface KubernetesSettings {
  kubeconfig: string;
  namespacePrefix: string;
  cpuRequestPercent: number;
  runtimeClass: string;
  gpuNodeLabel: string;
  registryInsecure: boolean;
}

/**
 * The Kubernetes backend: every container is a Pod in its environment's namespace
 * ({@link namespaceOf}), in gVisor (`runtimeClassName`, default `gvisor`); its status comes from one
 * Pod informer ({@link PodWatch}); exec goes through the Pod exec API; secrets become Kubernetes
 * Secrets owned by the Pod and referenced by `secretKeyRef`; a port becomes a ClusterIP Service
 * owned by the Pod; volumes are mounted by `subPath` from a PersistentVolume over the server's
 * volume store ({@link KubernetesVolumes}). The server's own store keeps what outlives a Pod:
 * records and their history (SQLite), kept logs (captured from the kubelet while the Pod runs),
 * secrets, volumes and the image index. Images are built here and pushed to `--registry`, which
 * the nodes pull from by digest.
 */
export async function kubernetesBackend(
  config: ServerConfig,
  settings: KubernetesSettings,
  log: Logger,
): Promise<ComputeBackend> {
  if (!config.registry)
    throw new ChalkError(Code.FailedPrecondition, "--backend kubernetes needs --registry");
  const kc = new KubeConfig();
  kc.loadFromFile(settings.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const logsDir = join(config.dataDir, "logs");
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await mkdir(logsDir, { recursive: true, mode: 0o700 });
  // Each volume is a disk of --volume-quota, as on the local backend: the Pods mount its directory
  // by subPath, so the quota's file system is what they write to.
  const stores = await openHostStores(config);
  const { records, secretStore, volumeStore } = stores;
  const registry = { address: config.registry, insecure: settings.registryInsecure };
  const runscPath = config.runsc ?? defaultRunscPath();
  const builder = await ImageBuilder.open({
    storeDir: config.imagesDir,
    runtime: new LocalRuntime({ stateDir: join(config.imagesDir, "chalk", "sandboxes"), runscPath }),
    registry,
  });
  const images = new KubernetesImages(builder, registry);
  const logs = new LocalLogStore(logsDir, config.containerLogMaxBytes);
  // Copies of Pod logs go through the same size-bounded writer as the local backend's inits.
  const logWriterPath = defaultLogWriterPath();
  const instance = settings.namespacePrefix.slice(0, -1);
  /** Labels on everything this server makes: the product's, and this server's instance. */
  const ours = { [MANAGED_BY_LABEL]: MANAGED_BY, [INSTANCE_LABEL]: instance };
  const apiRequests = new ApiRequestCounter(kc.getCurrentCluster()?.server ?? "");
  const watch = new PodWatch(kc, core, log, instance);
  try {
    await watch.synced();
  } catch (err) {
    await watch.close();
    apiRequests.close();
    throw new ChalkError(
      Code.Unavailable,
      `the Kubernetes API server (${kc.getCurrentCluster()?.server}) cannot be reached: ${(err as Error)?.message ?? err}`,
    );
  }
  // Secrets left by a server that died between creating a container's Secret and its Pod: swept
  // now (the watch is synced, so a live container's Pod is known) and then periodically.
  const orphanSecrets = new OrphanSecretSweep(core, log, {
    instance,
    hasPod: (id) => watch.get(id) !== undefined,
  });
  await orphanSecrets
    .sweep()
    .catch((err: unknown) =>
      log.warn({ error: ChalkError.from(err).message }, "cannot sweep orphan Secrets"),
    );
  orphanSecrets.start();
  const volumes = new KubernetesVolumes(core, volumeStore, join(config.dataDir, "volumes", "volumes"), ours);
  const namespaces = new Map<string, Promise<string>>();
  const captures = new Map<string, Promise<void>>();
  const logApi = new Log(kc);

  const ensureNamespace = (environment: string): Promise<string> => {
    let p = namespaces.get(environment);
    if (!p) {
      const name = namespaceOf(environment, settings.namespacePrefix);
      p = withRetry(`creating namespace ${name}`, () =>
        core.createNamespace({
          body: {
            metadata: {
              name,
              labels: ours,
              annotations: { [ENVIRONMENT_ANNOTATION]: environment },
            },
          },
        }),
      )
        .then(() => name)
        .catch(async (err: unknown) => {
          if (ChalkError.from(err).code !== Code.AlreadyExists) throw err;
          const ns = await withRetry(`reading namespace ${name}`, () => core.readNamespace({ name }));
          if (ns.metadata?.annotations?.[ENVIRONMENT_ANNOTATION] !== environment)
            throw new ChalkError(
              Code.FailedPrecondition,
              `namespace ${name} exists and is not environment ${JSON.stringify(environment)}'s`,
            );
          return name;
        });
      p.catch(() => namespaces.delete(environment));
      namespaces.set(environment, p);
    }
    return p;
  };

  /** Deletes a container's Pod (grace period), Service and Secret, and waits until the Pod is gone. */
  const removePod = async (id: string, namespace: string, gracePeriodSeconds: number) => {
    const name = podNameOf(id);
    const ignore404 = (err: unknown) => {
      if (ChalkError.from(err).code !== Code.NotFound) throw err;
    };
    await withRetry(`deleting Pod ${namespace}/${name}`, () =>
      core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds }),
    ).catch(ignore404);
    await withRetry(`deleting Service ${namespace}/${name}`, () =>
      core.deleteNamespacedService({ name, namespace }),
    ).catch(ignore404);
    await withRetry(`deleting Secret ${namespace}/${secretNameOf(id)}`, () =>
      core.deleteNamespacedSecret({ name: secretNameOf(id), namespace }),
    ).catch(ignore404);
    await watch
      .until(
        id,
        (pod) => (pod ? undefined : true),
        AbortSignal.timeout(gracePeriodSeconds * 1000 + DELETE_WAIT_MS),
      )
      .catch(() => {
        throw new ChalkError(
          Code.DeadlineExceeded,
          `Pod ${namespace}/${name} was not gone ${gracePeriodSeconds + DELETE_WAIT_MS / 1000}s after its deletion`,
        );
      });
  };

  /**
   * Copies a running container's log from the kubelet into the server's log store, through the
   * size-bounded log writer (`chalk-log-writer`, as the local backend's inits use), so the copy stays
   * under `2 × maxBytes` at every moment.
   */
  const capture = (id: string, namespace: string, follow: boolean): Promise<void> => {
    const p = (async () => {
      const writer = spawn(logWriterPath, [String(logs.maxBytes), logs.path(id)], {
        stdio: ["pipe", "ignore", "ignore"],
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      });
      const exited = new Promise<void>((resolve) => writer.once("close", () => resolve()));
      writer.once("error", () => undefined);
      const out = writer.stdin;
      out.on("error", () => undefined);
      try {
        await logApi.log(namespace, podNameOf(id), MAIN_CONTAINER, out, { follow });
      } catch (err) {
        out.end();
        log.warn({ container: id, error: ChalkError.from(err).message }, "cannot read the container's log");
      }
      await exited;
    })();
    captures.set(id, p);
    return p;
  };

  const sandboxOf = (id: string, namespace: string, extraLabels: Record<string, string>) =>
    new PodSandbox(
      id,
      namespace,
      podNameOf(id),
      { kc, watch, remove: (grace) => removePod(id, namespace, grace) },
      extraLabels,
    );

  const containerOf = (id: string, namespace: string, address: string | undefined) =>
    new KubernetesContainer(
      id,
      sandboxOf(id, namespace, { [SANDBOX_CONTAINER_LABEL]: id }),
      watch,
      address,
      () => captures.get(id) ?? Promise.resolve(),
      (grace) => removePod(id, namespace, grace),
    );

  /** Creates a Pod and waits until its main process runs (or ran); cleans up on any failure. */
  const startPod = async (pod: V1Pod, namespace: string) => {
    const created = await withRetry(`creating Pod ${namespace}/${pod.metadata?.name}`, () =>
      core.createNamespacedPod({ namespace, body: pod }),
    );
    watch.remember(created);
    return created;
  };

  const awaitRunning = async (id: string, namespace: string, signal: AbortSignal) => {
    await watch.until(
      id,
      (p) => {
        if (!p)
          throw new ChalkError(
            Code.Aborted,
            `Pod ${namespace}/${podNameOf(id)} was deleted while it started`,
          );
        const s = podProgress(p);
        if (s.state === "running" || s.state === "terminated") return true;
        if (s.state === "failed")
          throw new ChalkError(Code.FailedPrecondition, `the Pod cannot run: ${describeFailure(s)}`, {
            details: { reason: s.reason },
          });
        return undefined;
      },
      signal,
    );
  };

  const secrets = hostSecrets(secretStore);
  const backendVolumes = hostVolumes(volumeStore);

  const sandboxes = podSandboxes({
    watch,
    images,
    settings,
    instance,
    ensureNamespace,
    sandboxOf,
    startPod,
    awaitRunning,
    removePod,
  });

  return {
    name: "kubernetes",
    // Pause and resume, snapshots, warm pools, files, port forwarding, egress policy and detached
    // execs are not built on this backend.
    capabilities: new Set(),
    // The kubelet reports an exit within about its PLEG relist period (1 s) plus a status update.
    entrypointSettleMs: 2500,
    records,
    logs,
    secrets,
    volumes: backendVolumes,
    images,
    sandboxes,

    async createContainer(launch: ContainerLaunch, signal: AbortSignal): Promise<BackendContainer> {
      signal.throwIfAborted();
      const namespace = await ensureNamespace(launch.environment);
      const id = launch.id;
      const podName = podNameOf(id);
      // Secret values go into a Kubernetes Secret (never into the Pod spec, a record or a log).
      const values = secretStore.resolve(launch.environment, launch.secrets, { owner: id });
      const entries = Object.entries(values);
      const keys = Object.fromEntries(entries.map(([name], i) => [name, secretKeyFor(name, i)]));
      const claim =
        launch.mounts.length > 0
          ? await volumes.prepare(launch.environment, namespace, launch.mounts)
          : undefined;
      const pod = podFor(launch, {
        namespace,
        podName,
        runtimeClassName: settings.runtimeClass,
        image: launch.image.locator,
        role: "container",
        secret: entries.length > 0 ? { name: secretNameOf(id), keys } : undefined,
        volumesClaim: claim,
        gpuNodeLabel: settings.gpuNodeLabel,
        workdir: launch.image.workdir,
        cpuRequestPercent: settings.cpuRequestPercent,
      });
      pod.metadata!.annotations![LOGS_ANNOTATION] = launch.command.length > 0 ? "true" : "false";
      pod.metadata!.labels![INSTANCE_LABEL] = instance;
      let created: V1Pod | undefined;
      // Until the Pod owns the Secret, the orphan sweep leaves it alone.
      orphanSecrets.inFlight.add(id);
      try {
        if (entries.length > 0) {
          await withRetry(
            `creating Secret ${namespace}/${secretNameOf(id)}`,
            () =>
              core.createNamespacedSecret({
                namespace,
                body: {
                  metadata: {
                    name: secretNameOf(id),
                    labels: { ...ours, [CONTAINER_ID_LABEL]: id },
                  },
                  type: "Opaque",
                  data: Object.fromEntries(
                    entries.map(([name, v]) => [keys[name]!, Buffer.from(v).toString("base64")]),
                  ),
                },
              }),
            { redact: true },
          );
        }
        signal.throwIfAborted();
        created = await startPod(pod, namespace);
        const owner = {
          apiVersion: "v1",
          kind: "Pod",
          name: podName,
          uid: created.metadata!.uid!,
          blockOwnerDeletion: false,
        };
        if (entries.length > 0) {
          // The Secret goes with its Pod (ownerReferences), also if the server never deletes it.
          const secret = await withRetry(
            `reading Secret ${namespace}/${secretNameOf(id)}`,
            () => core.readNamespacedSecret({ name: secretNameOf(id), namespace }),
            { redact: true },
          );
          secret.metadata = { ...secret.metadata, ownerReferences: [owner] };
          await withRetry(
            `owning Secret ${namespace}/${secretNameOf(id)}`,
            () => core.replaceNamespacedSecret({ name: secretNameOf(id), namespace, body: secret }),
            { redact: true },
          );
        }
        let address: string | undefined;
        const port = launch.port;
        if (port) {
          const svc = await withRetry(`creating Service ${namespace}/${podName}`, () =>
            core.createNamespacedService({
              namespace,
              body: {
                metadata: {
                  name: podName,
                  labels: { ...ours, [CONTAINER_ID_LABEL]: id },
                  ownerReferences: [owner],
                },
                spec: {
                  type: "ClusterIP",
                  selector: { [CONTAINER_ID_LABEL]: id },
                  ports: [{ port, targetPort: port as never, protocol: "TCP" }],
                },
              },
            }),
          );
          address = `${svc.spec?.clusterIP}:${launch.port}`;
        }
        await awaitRunning(id, namespace, signal);
        if (launch.command.length > 0) void capture(id, namespace, true);
        return containerOf(id, namespace, address);
      } catch (err) {
        await removePod(id, namespace, 0).catch((e: unknown) =>
          log.warn(
            { container: id, error: ChalkError.from(e).message },
            "cannot remove a Pod that failed to start",
          ),
        );
        if (signal.aborted && ChalkError.from(err).code !== Code.FailedPrecondition)
          throw signal.reason ?? err;
        throw err;
      } finally {
        orphanSecrets.inFlight.delete(id);
      }
    },

    async adoptContainer(id: string): Promise<BackendContainer> {
      await watch.synced();
      const pod = watch.get(id);
      const namespace = pod?.metadata?.namespace;
      if (!pod || !namespace || pod.metadata?.labels?.[ROLE_LABEL] !== "container")
        throw new ChalkError(Code.NotFound, `container ${JSON.stringify(id)} not found`);
      let address: string | undefined;
      const port = pod.spec?.containers?.[0]?.ports?.[0]?.containerPort;
      if (port) {
        const svc = await withRetry(`reading Service ${namespace}/${podNameOf(id)}`, () =>
          core.readNamespacedService({ name: podNameOf(id), namespace }),
        ).catch(() => undefined);
        if (svc?.spec?.clusterIP) address = `${svc.spec.clusterIP}:${port}`;
      }
      if (pod.metadata?.annotations?.[LOGS_ANNOTATION] === "true" && !captures.has(id)) {
        // The kubelet keeps the whole log while the Pod exists: copy it again from the start.
        await truncate(logs.path(id), 0).catch(() => undefined);
        void capture(id, namespace, podProgress(pod).state === "running");
      }
      return containerOf(id, namespace, address);
    },

    async listContainers(): Promise<string[]> {
      await watch.synced();
      return watch.ids().filter((id) => watch.get(id)?.metadata?.labels?.[ROLE_LABEL] === "container");
    },

    async capacity() {
      const nodes = await withRetry("listing nodes", () => core.listNode());
      return nodeCapacity(nodes.items, settings.gpuNodeLabel);
    },

    registerMetrics(registry: Registry) {
      new Counter({
        name: "chalk_kubernetes_api_requests_total",
        help: "HTTP requests this server process sent to the Kubernetes API server, by method (watch connections and exec upgrades included)",
        labelNames: ["method"],
        registers: [registry],
        collect() {
          this.reset();
          for (const [method, n] of Object.entries(apiRequests.byMethod())) this.inc({ method }, n);
        },
      });
      new Counter({
        name: "chalk_kubernetes_watch_events_total",
        help: "Pod watch events (added, modified, deleted, relisted) the server's informer received",
        registers: [registry],
        collect() {
          this.reset();
          this.inc(watch.events);
        },
      });
      new Counter({
        name: "chalk_kubernetes_watch_restarts_total",
        help: "Times the Pod watch broke and was started again",
        registers: [registry],
        collect() {
          this.reset();
          this.inc(watch.restarts);
        },
      });
    },

    mountServices(add: ServiceAdder) {
      add(VolumeService, volumeServiceImpl(volumeStore));
      add(SecretService, secretServiceImpl(secretStore));
      add(ImageService, imageServiceImpl(builder));
    },

    async close() {
      await orphanSecrets.close();
      await watch.close();
      apiRequests.close();
      await builder.close();
      await stores.close();
    },
  };
}

export { apiStatus };
