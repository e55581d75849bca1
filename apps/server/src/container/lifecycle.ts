import { type ContainerStatus, type EndReason, isActive, type RunPhase } from "@chalk/spec";
import type { ContainerEnd } from "../backend/compute-backend.js";
import type { ContainerRecord, ContainerUpdate } from "../backend/container-records.js";
import { endMessage } from "./status-messages.js";

/**
 * What can happen to a container. Each event is applied by {@link transition}, which says whether
 * it is allowed in the container's current state and what the state becomes.
 */
export type LifecycleEvent =
  /** StartContainer: the client's files are in; the build begins. */
  | { type: "start" }
  /** The image is resolved; the backend creates the container. */
  | { type: "built"; imageUri: string; imageDigest: string; entrypoint: string[] }
  /** The backend runs the container; readiness (or settling) begins. */
  | { type: "created"; sandboxId: string; address: string }
  /** The readiness check passed (or there is none): the container is Running. */
  | { type: "ready" }
  /** The main process ended, or the backend lost the container. */
  | { type: "ended"; end: ContainerEnd; oomInExec?: boolean }
  /** A phase of the run failed. */
  | {
      type: "failed";
      reason: "BuildFailed" | "CreateFailed" | "UploadFailed" | "ReadinessTimeout";
      message: string;
    }
  /** The run deadline passed before the container was Running. */
  | { type: "deadline"; readyTimeoutSecs: number }
  /** StopContainer, in any phase. */
  | { type: "stop" }
  /** The server restarted while the run was in a phase (found at start). */
  | { type: "interrupted" }
  /** The backend did not answer about a running container. */
  | { type: "unknown"; reason: string }
  /** The backend answered again: the container runs. */
  | { type: "recovered" };

/** The state a transition starts from. */
export type LifecycleState = Pick<ContainerRecord, "status" | "phase" | "entrypoint" | "memoryBytes">;

const PHASE_WORDS: Record<RunPhase, string> = {
  upload: "waiting for its local files",
  build: "building the image",
  create: "creating the container",
  readiness: "waiting for readiness",
};

/** What a Pending container is doing, in words (`"building the image"`). */
export function phaseWords(phase: RunPhase | undefined): string {
  return phase ? PHASE_WORDS[phase] : "starting";
}

const pendingIn = (state: LifecycleState, phase: RunPhase) =>
  state.status === "Pending" && state.phase === phase;

/**
 * The lifecycle state machine: the update `event` makes to a container in `state`, or undefined
 * when the event does not apply there (a phase that a stop or a deadline overtook, an exit of a
 * container already stopped). Pure: the one owner of each container applies it atomically in the
 * store ({@link ContainerRecords.update}), so the first final status wins and is never replaced.
 *
 * Pending moves through its phases in order (upload → build → create → readiness), then Running;
 * stop, deadline, failure and restart end a Pending container in the phase it was in. A started
 * container ends when its main process ends (Succeeded or Failed) or when it is stopped.
 */
export function transition(
  state: LifecycleState,
  event: LifecycleEvent,
  now = Date.now(),
): ContainerUpdate | undefined {
  const active = isActive(state.status);
  const ended = (
    status: ContainerStatus,
    reason: EndReason,
    statusMessage: string,
    extra: ContainerUpdate = {},
  ): ContainerUpdate => ({
    status,
    reason,
    statusMessage,
    stoppedAt: now,
    // A run that ended before the container ran keeps the phase it ended in.
    phase: state.status === "Pending" ? state.phase : undefined,
    ...extra,
  });
  switch (event.type) {
    case "start":
      return pendingIn(state, "upload") ? { phase: "build", statusMessage: PHASE_WORDS.build } : undefined;
    case "built":
      return pendingIn(state, "build")
        ? {
            phase: "create",
            statusMessage: PHASE_WORDS.create,
            imageUri: event.imageUri,
            imageDigest: event.imageDigest,
            entrypoint: event.entrypoint,
          }
        : undefined;
    case "created":
      return pendingIn(state, "create")
        ? {
            phase: "readiness",
            statusMessage: PHASE_WORDS.readiness,
            sandboxId: event.sandboxId,
            address: event.address,
          }
        : undefined;
    case "ready":
      return pendingIn(state, "readiness")
        ? { status: "Running", phase: undefined, statusMessage: "", reason: "" }
        : undefined;
    case "ended": {
      // Only a container that was created can end; before that there is nothing to end.
      const started =
        state.status === "Running" || state.status === "Unknown" || pendingIn(state, "readiness");
      if (!started) return undefined;
      const { status, reason, message, exitCode } = endMessage(event.end, {
        hasEntrypoint: state.entrypoint.length > 0,
        memoryBytes: state.memoryBytes,
        oomInExec: event.oomInExec ?? false,
      });
      return ended(status, reason, message, exitCode === undefined ? {} : { exitCode });
    }
    case "failed":
      return state.status === "Pending" ? ended("Failed", event.reason, event.message) : undefined;
    case "deadline":
      return state.status === "Pending"
        ? ended(
            "Failed",
            "DeadlineExceeded",
            `the run was not Running within ${event.readyTimeoutSecs}s (readyTimeoutSecs); it was ${phaseWords(state.phase)}`,
          )
        : undefined;
    case "stop":
      return active
        ? ended(
            "Stopped",
            "Stopped",
            state.status === "Pending"
              ? `stopped by request while ${phaseWords(state.phase)}`
              : "stopped by request",
          )
        : undefined;
    case "interrupted":
      return state.status === "Pending"
        ? ended(
            "Failed",
            "ServerRestarted",
            `the server restarted while the run was ${phaseWords(state.phase)}`,
          )
        : undefined;
    case "unknown":
      return state.status === "Running"
        ? { status: "Unknown", statusMessage: `the backend did not answer: ${event.reason}` }
        : undefined;
    case "recovered":
      return state.status === "Unknown" ? { status: "Running", statusMessage: "", reason: "" } : undefined;
  }
}
