import type { Duplex } from "node:stream";
import type { GpuRequest } from "@chalk/core";
import type { ProcessExit, Sandbox, SandboxRuntime } from "@chalk/sandbox";
import type { ImageSource, SecretRef } from "@chalk/spec";
import type { Registry } from "prom-client";
import type { ServiceAdder } from "../service-adder.js";
import type { ContainerRecords } from "./container-records.js";
import { unimplemented } from "./unimplemented.js";

/**
 * Capabilities beyond the core lifecycle, which a backend may have or not: pause and resume
 * (checkpoint and restore), filesystem and memory snapshots, warm pools, a files API, port
 * forwarding, egress policy, detached exec sessions. Each follows the same lifecycle (a paused
 * container is one more status the state machine owns).
 */
export type BackendCapability =
  | "pause"
  | "snapshot"
  | "warm-pool"
  | "files"
  | "port-forward"
  | "egress-policy"
  | "detached-exec";

/**
 * Throws unimplemented unless `backend` has `capability`, naming the backends that have it (issue
 * 15 and 16 features on a backend that cannot honour them, such as Kubernetes for pause).
 */
export function requireCapability(
  backend: Pick<ComputeBackend, "name" | "capabilities">,
  capability: BackendCapability,
  availableOn: readonly string[],
): void {
  if (!backend.capabilities.has(capability)) throw unimplemented(capability, backend.name, availableOn);
}

/**
 * The seam between the container service and where containers run: everything the service needs
 * from a backend, in the terms of the field (an image reference, resources, env with secret
 * references, volume mounts by name and subpath, a port, an entrypoint), and nothing of any one
 * machine. The `local` backend answers it with runsc on this machine; a Kubernetes backend answers
 * it with Pods (`runtimeClassName: gvisor`), Secrets, PersistentVolumeClaims and Services.
 *
 * A backend also says where the rest of a container's state lives: its records and their history
 * ({@link ComputeBackend.records}, with the atomic name reservation), its kept logs
 * ({@link ComputeBackend.logs}), the secret store ({@link ComputeBackend.secrets}), the volume store
 * ({@link ComputeBackend.volumes}) and where image builds run ({@link ComputeBackend.images}).
 *
 * Capabilities beyond this lifecycle (pause and resume, snapshots, warm pools, a files API, port
 * forwarding, egress policy, detached exec sessions) are optional: a backend that lacks one refuses
 * it with {@link unimplemented}, naming the backend that has it.
 */
export interface ComputeBackend {
  /** The backend's name as configured: `local`, `kubernetes`. Used in messages and logs. */
  readonly name: string;

  /**
   * Creates a container from a resolved spec and starts its main process. Resolves once the
   * process runs; what the backend made for it is removed again when creation fails. `signal`
   * aborts a creation that has not started the container yet (a stop, or the run's deadline).
   */
  createContainer(launch: ContainerLaunch, signal: AbortSignal): Promise<BackendContainer>;

  /**
   * Re-attaches to a container this backend runs, after a server restart. not_found when the
   * backend no longer knows it; unavailable when the backend does not answer.
   */
  adoptContainer(id: string): Promise<BackendContainer>;

  /** The ids of every container the backend runs or holds, for reconciliation at start. */
  listContainers(): Promise<string[]>;

  /** The most one container can get here: memory, CPU and GPUs. */
  capacity(): Promise<BackendCapacity>;

  /** Container records, their history after they end, and the atomic reservation of names. */
  readonly records: ContainerRecords;
  /** Kept logs of containers' main processes. */
  readonly logs: ContainerLogs;
  /** The secret store: managed secrets, integrations and a run's temporary secrets. */
  readonly secrets: BackendSecrets;
  /** The volume store, as far as containers need it. */
  readonly volumes: BackendVolumes;
  /** Where images come from and where builds run. */
  readonly images: BackendImages;
  /**
   * Sandboxes for the sandbox service, created from image references (never host paths) and
   * scoped by the service to their environment.
   */
  readonly sandboxes: SandboxRuntime;

  /**
   * The optional capabilities this backend has (`local`: `port-forward`). The container service
   * refuses a call that needs one the backend lacks with {@link requireCapability}'s typed
   * unimplemented error, naming the backends that have it.
   */
  readonly capabilities: ReadonlySet<BackendCapability>;

  /**
   * How long an entrypoint must have run before a run counts it as started, in milliseconds
   * (default: the service's own, 300). Longer on a backend that learns of an exit later: on
   * Kubernetes an exit reaches the API server through the kubelet's status updates (its PLEG
   * relists every second), so an entrypoint that ends at once is seen ending only then.
   */
  readonly entrypointSettleMs?: number;

  /**
   * Exports the backend's own Prometheus metrics on the server's registry (Kubernetes: API requests
   * and Pod watch events). Optional: a backend without metrics of its own leaves it out.
   */
  registerMetrics?(registry: Registry): void;

  /** Mounts the backend's own gRPC services (volumes, secrets, images) with the server's interceptors. */
  mountServices(add: ServiceAdder): void;

  /** Stops background work and closes stores. Containers keep running. */
  close(): Promise<void>;
}

/** A volume mount as the service asks for it: a volume, a path inside it, and where it goes. */
export interface VolumeMountRequest {
  /** Volume name in the container's environment. */
  volume: string;
  /** Normalized components of a directory inside the volume; empty: the volume's root. */
  subPath: string[];
  /** Absolute path inside the container. */
  target: string;
  /** Mount read-only. */
  readOnly: boolean;
}

/** An image as a backend resolved it: an opaque locator for the backend, and its run configuration. */
export interface BackendImage {
  /**
   * Where the image lives, as users see it: a registry reference with a digest, a store reference
   * (`local/chalk/images@sha256:…`), or an operator image (`rootfs:NAME`).
   */
  imageUri: string;
  /** Digest of the image spec it was built from (empty for an image given by reference). */
  digest: string;
  /**
   * The backend's own locator of the image, handed back to {@link ComputeBackend.createContainer}
   * (a manifest digest in the local store; a pullable reference on Kubernetes). Opaque to the service.
   */
  locator: string;
  /** The image's environment. */
  env: Record<string, string>;
  /** The image's working directory, if it sets one. */
  workdir: string | undefined;
  /** The image's entrypoint (empty: none). */
  entrypoint: string[];
  /** True when nothing was built or pulled. */
  cached: boolean;
}

/** One piece of a build's log, by step. */
export interface BuildLogLine {
  /** 0-based step (the base is 0). */
  step: number;
  /** Number of steps, the base included. */
  steps: number;
  /** The output. */
  text: string;
}

/** Everything a backend needs to create one container. No value of a secret is in it. */
export interface ContainerLaunch {
  /** The container id (a UUID); the backend names what it makes after it. */
  id: string;
  /** The environment the container belongs to. */
  environment: string;
  /** The container name. */
  name: string;
  /** The image, as {@link BackendImages.resolve} returned it. */
  image: BackendImage;
  /** The main process; empty: an idle process that keeps the container up until it is stopped. */
  command: string[];
  /** Plain environment variables: the image's, then the spec's. */
  env: Record<string, string>;
  /**
   * Secrets to inject as environment variables (over `env`), by reference; `localEnv` ones resolve
   * from the temporary secrets of the container (owner = `id`). The backend materialises them its
   * way (values in the OCI process env; Kubernetes Secrets by `secretKeyRef`).
   */
  secrets: SecretRef[];
  /** Volumes to mount, by name and subpath; the backend materialises them its way. */
  mounts: VolumeMountRequest[];
  /**
   * Resources: millicores, bytes, the GPU request if any, and the disk limit of the container's
   * writable layer in bytes (undefined: none; Kubernetes' ephemeral-storage limit).
   */
  resources: {
    cpuMillis: number;
    memoryBytes: number;
    gpu: GpuRequest | undefined;
    diskBytes: number | undefined;
  };
  /** The port the host (or the cluster) reaches; undefined: no network at all. */
  port: number | undefined;
}

/** How a container's main process ended, or why the backend lost it. */
export type ContainerEnd = { kind: "exited"; exit: ProcessExit } | { kind: "lost"; reason: string };

/** A container the backend runs. */
export interface BackendContainer {
  /** The container id. */
  readonly id: string;
  /** The id of the sandbox that runs it, as the sandbox service knows it (`c.sandbox`). */
  readonly sandboxId: string;
  /** Where clients reach the container's port (`IP:PORT`, a Service's address); undefined without one. */
  readonly address: string | undefined;
  /** The container as a `Sandbox`: buffered and streaming exec, stdin, signals, PTY. */
  readonly sandbox: Sandbox;
  /**
   * Watches the container: resolves once its main process has ended (exit code, signal, OOM kill)
   * or the backend lost it. Never rejects.
   */
  ended(): Promise<ContainerEnd>;
  /** Whether `port` inside the container accepts a TCP connection now. */
  probePort(port: number): Promise<boolean>;
  /**
   * Opens one TCP connection to `port` at the container's own address, for port forwarding
   * (capability `port-forward`; a backend without it leaves this out). The stream is half-open
   * capable: ending its writable side sends a FIN and reading goes on. Never dials another host.
   * Throws failed_precondition when the container has no network, unavailable when the port
   * refuses the connection, and aborts (rejecting) with `signal`.
   */
  connectPort?(port: number, signal: AbortSignal): Promise<Duplex>;
  /**
   * Where the files agent (`chalk-fs-agent`, tooling/gvisor/cmd/chalk-fs-agent) is inside this
   * container, for the files API (capability `files`): the service starts it with
   * `sandbox.spawn` on first use and speaks its framed protocol over its stdio. Undefined: this
   * container has none (made before the backend shipped it, or a backend without the capability).
   */
  readonly filesAgentPath?: string | undefined;
  /**
   * Stops the container (SIGTERM, up to `gracePeriodSeconds`, SIGKILL) and removes what the backend
   * made for it. Idempotent; a container that already ended is only cleaned up.
   */
  stop(gracePeriodSeconds: number): Promise<void>;
}

/** The most one container can get from a backend. */
export interface BackendCapacity {
  /** Memory of the largest machine or node, in bytes. */
  memoryBytes: number;
  /** CPU of the largest machine or node, in millicores. */
  cpuMillis: number;
  /** GPUs: each type (undefined when the type is not known) and how many one container can get. */
  gpus: { type: string | undefined; count: number }[];
}

/** Kept logs of containers' main processes (stdout and stderr, interleaved as written). */
export interface ContainerLogs {
  /**
   * A container's log, oldest first (only its last `tailLines` lines when above 0). With `follow`,
   * new output until `done()` says the container ended and everything written was sent, or until
   * `signal` aborts.
   */
  read(
    id: string,
    options: { follow: boolean; done: () => boolean; signal: AbortSignal; tailLines?: number },
  ): AsyncIterable<Uint8Array>;
}

/** What the container service needs of the secret store. Values never leave the backend. */
export interface BackendSecrets {
  /** Stores the captured value of a `Secret.fromLocalEnv` for one container (the owner). */
  setTemporary(environment: string, owner: string, name: string, value: string): Promise<void>;
  /** Checks that every reference resolves; not_found naming each one that does not. */
  check(environment: string, refs: readonly SecretRef[], owner: string): Promise<void>;
  /** Deletes a container's temporary secrets. */
  deleteOwner(environment: string, owner: string): Promise<void>;
}

/** What the container service needs of the volume store. */
export interface BackendVolumes {
  /** not_found (naming the volume) when the volume does not exist. */
  require(environment: string, name: string): Promise<void>;
  /** Creates a volume for a run's uploads; already_exists when the name is taken. */
  create(environment: string, name: string): Promise<void>;
  /** Deletes a volume with its files; a volume that does not exist is fine. */
  delete(environment: string, name: string): Promise<void>;
}

/** Where images come from, and where builds run. */
export interface BackendImages {
  /** Throws invalid_argument (naming `field`) for a source this backend can never run, before any work. */
  check(source: ImageSource, field: string): void;
  /**
   * Gets the image, building a spec that is not cached (its output goes to `onLog`). `signal`
   * stops this caller's wait; a build that other containers share goes on.
   */
  resolve(
    source: ImageSource,
    environment: string,
    onLog: (line: BuildLogLine) => void,
    signal: AbortSignal,
  ): Promise<BackendImage>;
}
