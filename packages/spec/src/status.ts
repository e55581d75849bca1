import { RunPhase as WirePhase, ContainerStatus as WireStatus } from "@chalk/proto/container/v1";

/**
 * A container's lifecycle status, as users see it (`c.info.status`):
 *
 * - `Pending`: accepted, its name reserved; the run is uploading, building, creating or waiting for
 *   readiness (see {@link RunPhase}).
 * - `Running`: the main process runs (and the readiness check, if any, passed).
 * - `Succeeded`: the entrypoint exited with code 0.
 * - `Failed`: the entrypoint failed, the run failed in one of its phases, or the container was lost.
 * - `Stopped`: stopped by request (in any phase).
 * - `Unknown`: the backend did not answer when the server last asked.
 */
export type ContainerStatus = "Pending" | "Running" | "Succeeded" | "Failed" | "Stopped" | "Unknown";

/** Every {@link ContainerStatus}, in lifecycle order. */
export const CONTAINER_STATUSES: readonly ContainerStatus[] = [
  "Pending",
  "Running",
  "Succeeded",
  "Failed",
  "Stopped",
  "Unknown",
];

/** Statuses that hold the container's name: another run with that name fails with already_exists. */
export const ACTIVE_STATUSES: readonly ContainerStatus[] = ["Pending", "Running", "Unknown"];

/** True for a status that holds its name ({@link ACTIVE_STATUSES}); false once the container ended. */
export function isActive(status: ContainerStatus): boolean {
  return ACTIVE_STATUSES.includes(status);
}

/**
 * The phases of a run, in order. A `Pending` container is in one of them; a container that failed
 * or was stopped before it ran records the phase it ended in, and `run()`'s error names it.
 *
 * - `upload`: accepted, waiting for the client's local files and its start.
 * - `build`: getting or building the image.
 * - `create`: the backend creates and starts the container.
 * - `readiness`: waiting for the readiness check (a port, or a log line), or for a short-lived
 *   entrypoint to settle.
 */
export type RunPhase = "upload" | "build" | "create" | "readiness";

/**
 * Why a container ended, as one word to branch on (as Kubernetes gives a reason): `Completed`
 * (Succeeded); `Error` (an exit code), `Signal`, `OOMKilled`, `Lost`, `BuildFailed`, `CreateFailed`,
 * `UploadFailed`, `ReadinessTimeout`, `DeadlineExceeded` (the run deadline) or `ServerRestarted`
 * (Failed); `Stopped`. Empty while it is active.
 */
export type EndReason =
  | "Completed"
  | "Error"
  | "Signal"
  | "OOMKilled"
  | "Lost"
  | "BuildFailed"
  | "CreateFailed"
  | "UploadFailed"
  | "ReadinessTimeout"
  | "DeadlineExceeded"
  | "ServerRestarted"
  | "Stopped";

/** Every {@link RunPhase}, in order. */
export const RUN_PHASES: readonly RunPhase[] = ["upload", "build", "create", "readiness"];

const statusToWireMap: Record<ContainerStatus, WireStatus> = {
  Pending: WireStatus.PENDING,
  Running: WireStatus.RUNNING,
  Succeeded: WireStatus.SUCCEEDED,
  Failed: WireStatus.FAILED,
  Stopped: WireStatus.STOPPED,
  Unknown: WireStatus.UNKNOWN,
};

/** The wire enum of a status. */
export function statusToWire(status: ContainerStatus): WireStatus {
  return statusToWireMap[status];
}

/** The status of a wire enum value; undefined for UNSPECIFIED and values this version does not know. */
export function statusFromWire(status: WireStatus): ContainerStatus | undefined {
  return CONTAINER_STATUSES.find((s) => statusToWireMap[s] === status);
}

const phaseToWireMap: Record<RunPhase, WirePhase> = {
  upload: WirePhase.UPLOAD,
  build: WirePhase.BUILD,
  create: WirePhase.CREATE,
  readiness: WirePhase.READINESS,
};

/** The wire enum of a run phase (UNSPECIFIED for none). */
export function runPhaseToWire(phase: RunPhase | undefined): WirePhase {
  return phase === undefined ? WirePhase.UNSPECIFIED : phaseToWireMap[phase];
}

/** The run phase of a wire enum value; undefined for UNSPECIFIED and unknown values. */
export function runPhaseFromWire(phase: WirePhase): RunPhase | undefined {
  return RUN_PHASES.find((p) => phaseToWireMap[p] === phase);
}
