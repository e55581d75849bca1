import type { Transport, TransportCreateOptions } from "@chalk/rpc";
import type { Secret } from "@chalk/secrets";
import type { ContainerStatus, EndReason, RunPhase, VolumeTuple } from "@chalk/spec";
import type { VolumeUploadProgress } from "@chalk/volume";
import type { ContainerImage } from "./image-source.js";

/** What the server knows about a container: {@link Container.info}. */
export interface ContainerInfo {
  /** Lifecycle status. */
  status: ContainerStatus;
  /** Why the status is what it is (`"the entrypoint exited with code 3"`); empty while it runs. */
  statusMessage: string;
  /**
   * While Pending, the phase the run is in (`upload`, `build`, `create`, `readiness`); for a
   * container that failed or was stopped before it ran, the phase it ended in; else undefined.
   */
  phase: RunPhase | undefined;
  /**
   * Why it ended, as one word to branch on (as Kubernetes gives one): `Completed`, `Error`,
   * `Signal`, `OOMKilled`, `Lost`, `BuildFailed`, `CreateFailed`, `UploadFailed`,
   * `ReadinessTimeout`, `DeadlineExceeded`, `ServerRestarted`, `Stopped`; undefined while active.
   */
  reason: EndReason | undefined;
  /** When the container was created. */
  createdAt: Date;
  /** When it stopped, failed or succeeded; undefined while it runs. */
  stoppedAt: Date | undefined;
  /** `host:port` on which the host reaches the container's `port`; undefined without a port. */
  address: string | undefined;
  /** Exit code of the entrypoint, once it ended. */
  exitCode: number | undefined;
  /** The sandbox the container runs in. */
  sandboxId: string;
  /** Resources in force: CPU in millicores, memory in bytes. */
  resources: { cpuMillis: number; memoryBytes: number; gpu: string | undefined };
}

/** Where the server is and who is calling. Each field falls back to an environment variable. */
export interface ContainerConnectOptions extends TransportCreateOptions {
  /**
   * An open transport to use. Default: one shared by every SDK object with the same address, token
   * and environment (`CHALK_API_SERVER`, `CHALK_TOKEN`, `CHALK_ENVIRONMENT`).
   */
  transport?: Transport;
}

/**
 * When a started container counts as ready, so that `run()` resolves: once `port` (the container's
 * own `port`) accepts a TCP connection, or once a line of the entrypoint's output contains
 * `logLine`, as testcontainers' wait strategies do. The server checks it; past `timeoutSecs` the
 * run fails in phase `readiness` and the container is stopped.
 */
export type ContainerReadiness =
  | { port: number; logLine?: undefined; timeoutSecs?: number }
  | { logLine: string; port?: undefined; timeoutSecs?: number };

/** Options for `new Container(...)`: what to run, following the seed's Container. */
export interface ContainerCreateOptions extends ContainerConnectOptions {
  /** The image: an `Image` spec (built when not cached) or an image reference string. */
  image: ContainerImage;
  /** Name, unique among the environment's active containers: 1-63 of a-z, 0-9 and "-". */
  name: string;
  /** CPU cores (Kubernetes quantity): `"4"`, `"0.5"`, `"500m"`. Default: the environment's. */
  cpu?: string;
  /** Memory (Kubernetes quantity): `"512Mi"`, `"16Gi"`. Default: the environment's. */
  memory?: string;
  /** GPU: `"nvidia-l4:1"`, `"nvidia-l4"` or `"2"`. Default: none. */
  gpu?: string;
  /** Plaintext environment variables. */
  env?: Record<string, string>;
  /** Secrets injected as environment variables (`Secret.fromEnv`, `fromIntegration`, `fromLocalEnv`). */
  secrets?: readonly Secret[];
  /** Named volumes to mount: `[["training-data", "/data"]]`. */
  volumes?: readonly VolumeTuple[];
  /** A port inside the container for the host to reach at `info.address` (1-65535). */
  port?: number;
  /** The main process; its exit ends the container. Default: the image's, else an idle process. */
  entrypoint?: readonly string[];
  /**
   * When the started container counts as ready: `{ port: 8080 }` or `{ logLine: "listening" }`,
   * with `timeoutSecs` (default 60). Default: once its main process started (an entrypoint: once it
   * has run for a moment, so one that ends at once makes `run()` report how it ended).
   */
  readiness?: ContainerReadiness;
}

/** One piece of an image build's log, for {@link ContainerRunOptions.onBuildLog}. */
export interface ContainerBuildLog {
  /** 0-based build step. */
  step: number;
  /** Number of steps. */
  steps: number;
  /** Output of the step. */
  text: string;
}

/** Options for {@link Container.run}. */
export interface ContainerRunOptions {
  /**
   * Seconds the whole run may take, until the container is Running: uploading local files,
   * building the image, creating the container and its readiness check. Past it the run fails
   * with deadline_exceeded in the phase it was in, and nothing it started keeps running.
   * Default 600.
   */
  readyTimeoutSecs?: number;
  /** Receives the image build's output as it happens (nothing when the image is cached). */
  onBuildLog?: (log: ContainerBuildLog) => void;
  /** Follows the upload of `addLocalFile` / `addLocalDir` files (strategy "volume"), if any. */
  onUploadProgress?: (progress: VolumeUploadProgress) => void;
}

/** Options for {@link Container.exec}; an options object may close the argument list. */
export interface ContainerExecOptions {
  /** Seconds after which the command is killed and exec throws deadline_exceeded. Default: none. */
  timeoutSecs?: number;
  /** Bytes (or UTF-8 text) written to the command's stdin before EOF. At most 4 MiB. */
  stdin?: Uint8Array | string;
  /** Extra environment variables for this command. */
  env?: Record<string, string>;
  /** Working directory (absolute). */
  workdir?: string;
}

/** The result of {@link Container.exec}. */
export interface ContainerExecResult {
  /** Everything the command wrote to stdout. */
  stdout: Uint8Array;
  /** Everything the command wrote to stderr. */
  stderr: Uint8Array;
  /** stdout as UTF-8 text. */
  stdoutText: string;
  /** stderr as UTF-8 text. */
  stderrText: string;
  /** Exit code; null when a signal ended the command (then `signal` names it). */
  exitCode: number | null;
  /** Name of the signal that ended the command, or null. */
  signal: string | null;
  /**
   * Always false in a result: a command whose timeout passed makes exec throw deadline_exceeded
   * instead. Present so that the result has the shape of `Sandbox.exec`'s.
   */
  timedOut: boolean;
  /** True when the container's memory limit was hit and the OOM killer ended the command. */
  oomKilled: boolean;
}

/** Options for {@link Container.stop}. */
export interface ContainerStopOptions {
  /** Seconds between SIGTERM and SIGKILL. Default 0: SIGKILL at once. At most 3600. */
  gracePeriodSeconds?: number;
}

/** Options for {@link Container.logs}. */
export interface ContainerLogsOptions {
  /** Stream new output until the entrypoint ends. */
  follow?: boolean;
  /** Start with only the last this many lines of the output kept so far (`tail -n`). Default: all. */
  tailLines?: number;
  /** Stops following. */
  signal?: AbortSignal;
}
