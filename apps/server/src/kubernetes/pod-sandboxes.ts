import { randomUUID } from "node:crypto";
import { ChalkError, Code, parseCpu, parseMemory } from "@chalk/core";
import type { Sandbox, SandboxCreateOptions, SandboxRuntime } from "@chalk/sandbox";
import type { V1Pod } from "@kubernetes/client-node";
import type { KubernetesSettings } from "./kubernetes-backend.js";
import type { KubernetesImages } from "./kubernetes-images.js";
import { CONTAINER_ID_LABEL, INSTANCE_LABEL, podNameOf, ROLE_LABEL } from "./kubernetes-names.js";
import { type PodSandbox, SANDBOX_CONTAINER_LABEL } from "./pod-sandbox.js";
import { podFor } from "./pod-spec.js";
import type { PodWatch } from "./pod-watch.js";

/** Annotation: a sandbox Pod's labels (JSON), for the sandbox service. */
const SANDBOX_LABELS_ANNOTATION = "chalk.dev/sandbox-labels";

/** The environment label a sandbox service request carries. */
const SANDBOX_ENVIRONMENT = "chalk.environment";

/** What the sandbox runtime of the kubernetes backend uses of the backend. */
export interface PodSandboxesDeps {
  watch: PodWatch;
  images: KubernetesImages;
  settings: Pick<KubernetesSettings, "runtimeClass" | "gpuNodeLabel" | "cpuRequestPercent">;
  /** The backend instance's name (its namespace prefix without the final `-`), a label on its Pods. */
  instance: string;
  /** The namespace of an environment, created on first use. */
  ensureNamespace(environment: string): Promise<string>;
  /** A handle on Pod `id` in `namespace`, with the labels its sandbox reports. */
  sandboxOf(id: string, namespace: string, labels: Record<string, string>): PodSandbox;
  /** Creates the Pod (retried on transient API failures). */
  startPod(pod: V1Pod, namespace: string): Promise<V1Pod>;
  /** Resolves once Pod `id`'s main process runs (or ran); throws the Pod's failure. */
  awaitRunning(id: string, namespace: string, signal: AbortSignal): Promise<void>;
  /** Deletes Pod `id` with the grace period, in seconds, and waits until it is gone. */
  removePod(id: string, namespace: string, gracePeriodSeconds: number): Promise<void>;
}

/**
 * The sandbox service's runtime on Kubernetes: every sandbox is a bare Pod (role `sandbox`) in its
 * environment's namespace, started from an image reference resolved (built and pushed) by the
 * backend's images; host paths (`rootfs`, mounts, log paths) are refused with `invalid_argument`.
 * Spawn, stdin, signals and PTYs go through the Pod exec API ({@link PodSandbox}).
 */
export function podSandboxes(deps: PodSandboxesDeps): SandboxRuntime {
  const { watch, images, settings, instance, ensureNamespace, sandboxOf, startPod, awaitRunning, removePod } =
    deps;
  return {
    async get(id) {
      const pod = watch.get(id);
      if (!pod?.metadata?.namespace)
        throw new ChalkError(Code.NotFound, `sandbox ${JSON.stringify(id)} not found`);
      return sandboxOf(id, pod.metadata.namespace, labelsOf(pod));
    },
    async list(options = {}) {
      const want = Object.entries(options.labels ?? {});
      const out = [];
      for (const id of watch.ids()) {
        const pod = watch.get(id);
        if (!pod?.metadata?.namespace) continue;
        const info = await sandboxOf(id, pod.metadata.namespace, labelsOf(pod))
          .info()
          .catch(() => undefined);
        if (info && want.every(([k, v]) => info.labels[k] === v)) out.push(info);
      }
      return out;
    },
    async create(options: SandboxCreateOptions): Promise<Sandbox> {
      if (options.rootfs || options.mounts || options.logPath || options.writableLayerDir)
        throw new ChalkError(
          Code.InvalidArgument,
          "sandboxes on Kubernetes start from an image reference only",
        );
      if (!options.image) throw new ChalkError(Code.InvalidArgument, "image: required", { field: "image" });
      const environment = options.labels?.[SANDBOX_ENVIRONMENT] ?? "default";
      const image = await images.resolve(
        { kind: "uri", uri: options.image },
        environment,
        () => undefined,
        AbortSignal.timeout(600_000),
      );
      const namespace = await ensureNamespace(environment);
      const id = options.id ?? randomUUID();
      const pod = podFor(
        {
          id,
          environment,
          name: id,
          image,
          command: options.command ? [...options.command] : [],
          env: { ...image.env, ...(options.env ?? {}) },
          secrets: [],
          mounts: [],
          resources: {
            cpuMillis: options.cpu ? parseCpu(options.cpu) : 1000,
            memoryBytes: options.memory ? parseMemory(options.memory) : 1024 ** 3,
            gpu: undefined,
            diskBytes: undefined,
          },
          port: undefined,
        },
        {
          namespace,
          podName: podNameOf(id),
          runtimeClassName: settings.runtimeClass,
          image: image.locator,
          role: "sandbox",
          secret: undefined,
          volumesClaim: undefined,
          gpuNodeLabel: settings.gpuNodeLabel,
          workdir: options.workdir ?? image.workdir,
          cpuRequestPercent: settings.cpuRequestPercent,
        },
      );
      pod.metadata!.annotations![SANDBOX_LABELS_ANNOTATION] = JSON.stringify(options.labels ?? {});
      pod.metadata!.labels![INSTANCE_LABEL] = instance;
      await startPod(pod, namespace);
      try {
        await awaitRunning(id, namespace, AbortSignal.timeout(600_000));
      } catch (err) {
        await removePod(id, namespace, 0).catch(() => undefined);
        throw err;
      }
      return sandboxOf(id, namespace, labelsOf(watch.get(id) ?? pod));
    },
  };
}

/** A Pod's sandbox labels: a container Pod's id, or the labels a sandbox was created with. */
function labelsOf(pod: V1Pod): Record<string, string> {
  if (pod.metadata?.labels?.[ROLE_LABEL] === "container") {
    return { [SANDBOX_CONTAINER_LABEL]: pod.metadata.labels[CONTAINER_ID_LABEL] ?? "" };
  }
  try {
    return JSON.parse(pod.metadata?.annotations?.[SANDBOX_LABELS_ANNOTATION] ?? "{}") as Record<
      string,
      string
    >;
  } catch {
    return {};
  }
}
