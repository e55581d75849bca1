import { setTimeout as sleep } from "node:timers/promises";
import type { ReadinessSpec } from "@chalk/spec";
import type { BackendContainer, ContainerLogs } from "../backend/compute-backend.js";

/**
 * How long an entrypoint must run before a container without a readiness check counts as Running:
 * an entrypoint that ends within it makes the run end with its real outcome, not Running.
 */
export const ENTRYPOINT_SETTLE_MS = 300;

/** How often a port is probed while waiting for it. */
const PORT_PROBE_MS = 100;

/** The outcome of waiting for readiness. */
export type ReadinessOutcome =
  | { kind: "ready" }
  /** The main process ended first: its end decides the status, not readiness. */
  | { kind: "ended" }
  /** The check did not pass in time. */
  | { kind: "timeout"; message: string }
  /** A stop or the run's deadline ended the wait. */
  | { kind: "aborted" };

/** What {@link waitForReadiness} needs. */
export interface ReadinessWait {
  id: string;
  container: BackendContainer;
  readiness: ReadinessSpec | undefined;
  hasEntrypoint: boolean;
  logs: ContainerLogs;
  signal: AbortSignal;
  /** Override of {@link ENTRYPOINT_SETTLE_MS} (tests). */
  settleMs?: number;
}

/**
 * Waits until a started container counts as ready: its readiness check passes (a port accepts a
 * TCP connection, or a line of the entrypoint's output contains the text), or, without a check, its
 * entrypoint has run for {@link ENTRYPOINT_SETTLE_MS} (an idle container is ready at once). Ends
 * early when the main process ends or `signal` aborts.
 */
export async function waitForReadiness(w: ReadinessWait): Promise<ReadinessOutcome> {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  w.signal.addEventListener("abort", onAbort, { once: true });
  let ended = false;
  const end = w.container.ended().then(() => {
    ended = true;
    stop.abort();
    return { kind: "ended" } as const;
  });
  try {
    const check = (async (): Promise<ReadinessOutcome> => {
      const r = w.readiness;
      if (!r) {
        if (w.hasEntrypoint)
          await sleep(w.settleMs ?? ENTRYPOINT_SETTLE_MS, undefined, { signal: stop.signal });
        return { kind: "ready" };
      }
      const deadline = AbortSignal.any([stop.signal, AbortSignal.timeout(r.timeoutSecs * 1000)]);
      const passed =
        r.kind === "port"
          ? await portOpens(w.container, r.port, deadline)
          : await logHasLine(w, r.logLine, deadline, () => ended);
      if (passed) return { kind: "ready" };
      if (stop.signal.aborted) return { kind: "aborted" };
      const what =
        r.kind === "port"
          ? `port ${r.port} did not accept a connection`
          : `no line of the output contained ${JSON.stringify(r.logLine)}`;
      return { kind: "timeout", message: `not ready within ${r.timeoutSecs}s: ${what}` };
    })().catch((): ReadinessOutcome => ({ kind: "aborted" }));
    const outcome = await Promise.race([check, end]);
    if (ended) return { kind: "ended" };
    if (w.signal.aborted) return { kind: "aborted" };
    return outcome;
  } finally {
    w.signal.removeEventListener("abort", onAbort);
    stop.abort();
  }
}

async function portOpens(container: BackendContainer, port: number, signal: AbortSignal): Promise<boolean> {
  while (!signal.aborted) {
    if (await container.probePort(port).catch(() => false)) return true;
    await sleep(PORT_PROBE_MS, undefined, { signal }).catch(() => undefined);
  }
  return false;
}

async function logHasLine(
  w: ReadinessWait,
  text: string,
  signal: AbortSignal,
  ended: () => boolean,
): Promise<boolean> {
  const decoder = new TextDecoder();
  let line = "";
  for await (const chunk of w.logs.read(w.id, { follow: true, done: ended, signal })) {
    line += decoder.decode(chunk, { stream: true });
    const lines = line.split("\n");
    line = lines.pop() ?? "";
    // A partial line is kept only as long as the text could still appear in it.
    if (lines.some((l) => l.includes(text)) || line.includes(text)) return true;
    if (line.length > 64 * 1024) line = line.slice(-text.length);
    if (signal.aborted) return false;
  }
  return false;
}
