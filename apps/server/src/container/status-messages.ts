import { formatBytes } from "@chalk/core";
import type { ContainerStatus, EndReason } from "@chalk/spec";
import type { ContainerEnd } from "../backend/compute-backend.js";

/** What the container was, for wording its end. */
export interface EndContext {
  /** It runs an entrypoint (else an idle process that only `stop` ends). */
  hasEntrypoint: boolean;
  /** Its memory limit, for an out-of-memory message. */
  memoryBytes: number;
  /** A command run with exec was killed for memory just before the container ended. */
  oomInExec?: boolean;
}

/**
 * The status, message and exit code of a container whose main process ended (or that the backend
 * lost), in words that fit the container: an entrypoint or the idle process, an out-of-memory kill
 * caused by an exec or by the entrypoint.
 *
 * gVisor runs every process of a container in one sandbox, and the host ends the whole sandbox when
 * the container's memory cgroup is full: a command run with exec that uses too much memory ends
 * the container with it (google/gvisor#2533). The message says so.
 */
export function endMessage(
  end: ContainerEnd,
  ctx: EndContext,
): { status: ContainerStatus; reason: EndReason; message: string; exitCode: number | undefined } {
  if (end.kind === "lost") {
    return {
      status: "Failed",
      reason: "Lost",
      message: `the container was lost: ${end.reason}`,
      exitCode: undefined,
    };
  }
  const { exit } = end;
  const limit = formatBytes(ctx.memoryBytes);
  if (exit.oomKilled) {
    const byExec = ctx.oomInExec || !ctx.hasEntrypoint;
    return {
      status: "Failed",
      reason: "OOMKilled",
      message: byExec
        ? `out of memory: a command run with exec used more than the container's ${limit}, and the container ended with it${ctx.hasEntrypoint ? " (entrypoint included)" : ""}`
        : `out of memory: the entrypoint used more than the container's ${limit} and was killed`,
      exitCode: undefined,
    };
  }
  const what = ctx.hasEntrypoint ? "the entrypoint" : "the container's idle process";
  if (exit.exitCode !== null) {
    const succeeded = ctx.hasEntrypoint && exit.exitCode === 0;
    return {
      status: succeeded ? "Succeeded" : "Failed",
      reason: succeeded ? "Completed" : "Error",
      message: `${what} exited with code ${exit.exitCode}`,
      exitCode: ctx.hasEntrypoint ? exit.exitCode : undefined,
    };
  }
  return {
    status: "Failed",
    reason: "Signal",
    message: exit.signal ? `${what} was killed by ${exit.signal}` : `${what} ended without an exit status`,
    exitCode: undefined,
  };
}
