import type { ProcessExit } from "@chalk/sandbox";
import type { V1Pod } from "@kubernetes/client-node";
import { MAIN_CONTAINER } from "./kubernetes-names.js";

/** Where a Pod's one container stands, as the backend needs it. */
export type PodProgress =
  /** Not running yet (scheduling, pulling, creating); `reason` when Kubernetes gave one. */
  | { state: "pending"; reason: string }
  /** The main process runs. */
  | { state: "running" }
  /** The main process ended. */
  | { state: "terminated"; exit: ProcessExit; reason: string }
  /** It can never run: the image cannot be pulled, the spec cannot be run, no node fits. */
  | { state: "failed"; reason: string; message: string };

/**
 * Waiting reasons after which the container will not start without a change: the image cannot be
 * pulled (`ImagePullBackOff` follows the first `ErrImagePull`), its reference or config is
 * invalid, or its process keeps failing (`CrashLoopBackOff`, only with a restart policy other than
 * the backend's `Never`).
 */
export const FATAL_WAITING_REASONS: ReadonlySet<string> = new Set([
  "ImagePullBackOff",
  "InvalidImageName",
  "ErrImageNeverPull",
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
  "CrashLoopBackOff",
]);

const SIGNALS: Record<number, string> = { 1: "SIGHUP", 2: "SIGINT", 9: "SIGKILL", 15: "SIGTERM" };

/**
 * Reads a Pod's status (`status.phase`, the `PodScheduled` condition and the main container's
 * `state`) into {@link PodProgress}. `OOMKilled` as a terminated reason is an out-of-memory kill;
 * a Pod that the scheduler cannot place (`Unschedulable`) or that failed without its container
 * having run (`Evicted`, admission errors) is failed, with Kubernetes' reason and message.
 */
export function podProgress(pod: V1Pod): PodProgress {
  const status = pod.status ?? {};
  const main = status.containerStatuses?.find((c) => c.name === MAIN_CONTAINER);
  const terminated = main?.state?.terminated;
  if (terminated) {
    const oomKilled = terminated.reason === "OOMKilled";
    const signal = terminated.signal ? (SIGNALS[terminated.signal] ?? `signal ${terminated.signal}`) : null;
    return {
      state: "terminated",
      reason: terminated.reason ?? "",
      exit: {
        exitCode: signal ? null : terminated.exitCode,
        signal,
        timedOut: false,
        oomKilled,
      },
    };
  }
  if (main?.state?.running) return { state: "running" };
  const waiting = main?.state?.waiting;
  if (waiting?.reason && FATAL_WAITING_REASONS.has(waiting.reason)) {
    return { state: "failed", reason: waiting.reason, message: waiting.message ?? "" };
  }
  if (status.phase === "Failed") {
    return { state: "failed", reason: status.reason ?? "Failed", message: status.message ?? "" };
  }
  const scheduled = status.conditions?.find((c) => c.type === "PodScheduled");
  // A claim still binding is a moment's wait, not a Pod that can never be placed.
  if (
    scheduled?.status === "False" &&
    scheduled.reason === "Unschedulable" &&
    !/unbound immediate PersistentVolumeClaims/.test(scheduled.message ?? "")
  ) {
    return { state: "failed", reason: "Unschedulable", message: scheduled.message ?? "" };
  }
  return { state: "pending", reason: waiting?.reason ?? status.reason ?? "" };
}

/** A failure as one readable line: `ImagePullBackOff: Back-off pulling image "…"`. */
export function describeFailure(p: { reason: string; message: string }): string {
  return p.message ? `${p.reason}: ${p.message}` : p.reason;
}
