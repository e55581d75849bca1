import type { V1Pod } from "@kubernetes/client-node";
import type { ContainerLaunch } from "../backend/compute-backend.js";
import {
  CONTAINER_ID_LABEL,
  ENVIRONMENT_ANNOTATION,
  MAIN_CONTAINER,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  NAME_ANNOTATION,
  ROLE_LABEL,
} from "./kubernetes-names.js";

/**
 * The idle process of a container without an entrypoint: a shell that sleeps until it is stopped
 * and exits 0 at SIGTERM (so a stop's grace period is not waited out). It needs `/bin/sh` and
 * `sleep` in the image (every Debian and busybox image has them).
 */
export const IDLE_COMMAND = [
  "/bin/sh",
  "-c",
  "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done",
] as const;

/** The name of the Pod volume that holds an environment's volumes (one claim per namespace). */
export const VOLUMES_VOLUME = "chalk-volumes";

/** Where a container's Pod gets what the launch does not say. */
export interface PodSpecOptions {
  /** Namespace of the container's environment. */
  namespace: string;
  /** Pod name. */
  podName: string;
  /** `runtimeClassName` (default `gvisor`). */
  runtimeClassName: string;
  /** The pullable image reference (by digest). */
  image: string;
  /** Role label: `container` or `sandbox`. */
  role: "container" | "sandbox";
  /**
   * The Secret holding the secret env values and, for each env var name, its key in it. The Pod
   * refers to them by `secretKeyRef`: no value is in the Pod spec.
   */
  secret: { name: string; keys: Record<string, string> } | undefined;
  /** The claim that holds the environment's volumes, when the launch mounts any. */
  volumesClaim: string | undefined;
  /** GPU node selection: the node label whose value is the accelerator type. */
  gpuNodeLabel: string;
  /** Working directory (default: the image's). */
  workdir: string | undefined;
  /**
   * The CPU request as a percentage of the limit (100: equal, Guaranteed QoS with memory). Memory
   * is always requested in full (it cannot be taken back from a process).
   */
  cpuRequestPercent?: number;
}

/** The env var name as a Secret key: itself when it is a valid key, else a positional key. */
export function secretKeyFor(name: string, index: number): string {
  return /^[-._a-zA-Z0-9]{1,253}$/.test(name) ? name : `k${index}`;
}

/**
 * The Pod of a container: one container (`main`) in gVisor (`runtimeClassName`), CPU and memory as
 * requests and limits (equal by default: Guaranteed QoS; see {@link PodSpecOptions.cpuRequestPercent}), the entrypoint as `command` (or the idle process),
 * plain env, secret env by `secretKeyRef`, volumes by `subPath` of the environment's claim, the
 * port as a `containerPort`. `restartPolicy: Never`: a process that ends ends the container, as on
 * the local backend. No service account token is mounted and no Service env vars are injected: a
 * container gets nothing of the cluster's.
 *
 * `shareProcessNamespace: true` makes the Pod's pause process PID 1 of one PID namespace for the
 * Pod: it reaps every orphan (of the entrypoint or of an exec), as tini does as PID 1 on the local
 * backend, and the entrypoint is not PID 1, so the kernel's default signal dispositions apply to it
 * (SIGTERM ends a process without a handler, as locally). gVisor implements it: the sandbox's root
 * container is the pause process, and containers joining the sandbox share its PID namespace. No
 * extra image or binary is needed in the user's image.
 */
export function podFor(launch: ContainerLaunch, o: PodSpecOptions): V1Pod {
  const secretNames = new Set(Object.keys(o.secret?.keys ?? {}));
  const env = [
    ...Object.entries(launch.env)
      .filter(([k]) => !secretNames.has(k))
      .map(([name, value]) => ({ name, value })),
    ...Object.entries(o.secret?.keys ?? {}).map(([name, key]) => ({
      name,
      valueFrom: { secretKeyRef: { name: o.secret!.name, key, optional: false } },
    })),
  ];
  const { cpuMillis, memoryBytes, gpu, diskBytes } = launch.resources;
  const limits: Record<string, string> = { cpu: `${cpuMillis}m`, memory: String(memoryBytes) };
  if (gpu) limits["nvidia.com/gpu"] = String(gpu.count);
  // The writable-layer limit (--default-disk) is Kubernetes' ephemeral-storage, which the kubelet
  // enforces by eviction rather than ENOSPC.
  if (diskBytes !== undefined) limits["ephemeral-storage"] = String(diskBytes);
  const cpuRequest = Math.max(1, Math.ceil((cpuMillis * (o.cpuRequestPercent ?? 100)) / 100));
  // The disk limit is requested in full as well (Kubernetes would default the request to the limit).
  const requests = { ...limits, cpu: `${cpuRequest}m` };
  const mounts = launch.mounts.map((m) => ({
    name: VOLUMES_VOLUME,
    mountPath: m.target,
    subPath: [m.volume, "data", ...m.subPath].join("/"),
    readOnly: m.readOnly,
  }));
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: o.podName,
      namespace: o.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [CONTAINER_ID_LABEL]: launch.id, [ROLE_LABEL]: o.role },
      annotations: { [ENVIRONMENT_ANNOTATION]: launch.environment, [NAME_ANNOTATION]: launch.name },
    },
    spec: {
      runtimeClassName: o.runtimeClassName,
      restartPolicy: "Never",
      shareProcessNamespace: true,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      ...(gpu
        ? {
            ...(gpu.type ? { nodeSelector: { [o.gpuNodeLabel]: gpu.type } } : {}),
            tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
          }
        : {}),
      containers: [
        {
          name: MAIN_CONTAINER,
          image: o.image,
          imagePullPolicy: "IfNotPresent",
          command: launch.command.length > 0 ? [...launch.command] : [...IDLE_COMMAND],
          args: [],
          ...(o.workdir ? { workingDir: o.workdir } : {}),
          env,
          resources: { requests, limits },
          ...(launch.port ? { ports: [{ containerPort: launch.port, protocol: "TCP" }] } : {}),
          ...(mounts.length > 0 ? { volumeMounts: mounts } : {}),
          securityContext: { allowPrivilegeEscalation: false },
        },
      ],
      ...(mounts.length > 0 && o.volumesClaim
        ? { volumes: [{ name: VOLUMES_VOLUME, persistentVolumeClaim: { claimName: o.volumesClaim } }] }
        : {}),
    },
  };
}
