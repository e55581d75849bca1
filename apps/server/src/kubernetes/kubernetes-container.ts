import { connect } from "node:net";
import { ChalkError } from "@chalk/core";
import type { BackendContainer, ContainerEnd } from "../backend/compute-backend.js";
import type { PodSandbox } from "./pod-sandbox.js";
import { podProgress } from "./pod-status.js";
import type { PodWatch } from "./pod-watch.js";

/** How long a port probe waits for a connection, in milliseconds. */
const PROBE_TIMEOUT_MS = 500;
/** How long the end of a container waits for its log capture to drain, in milliseconds. */
const LOG_DRAIN_MS = 10_000;

/**
 * A container of the Kubernetes backend: one Pod (`c-<id>`) in its environment's namespace. Its
 * end comes from the Pod watch: the main container terminated (exit code, OOMKilled), or the Pod
 * was deleted or failed by someone else (lost, with Kubernetes' reason). The end is reported once
 * the log capture has written everything the kubelet had, so `logs()` after the end is complete.
 */
export class KubernetesContainer implements BackendContainer {
  readonly #ended: Promise<ContainerEnd>;
  #stopping = false;

  constructor(
    readonly id: string,
    readonly sandbox: PodSandbox,
    watch: PodWatch,
    /** The Service's `clusterIP:port`, when the container exposes a port. */
    readonly address: string | undefined,
    /** Resolves when the log capture ended (or at once without one). */
    logsDrained: () => Promise<void>,
    private readonly remove: (gracePeriodSeconds: number) => Promise<void>,
  ) {
    this.#ended = watch
      .until(this.id, (pod): ContainerEnd | undefined => {
        if (!pod) {
          return this.#stopping
            ? {
                kind: "exited",
                exit: { exitCode: null, signal: "SIGKILL", timedOut: false, oomKilled: false },
              }
            : { kind: "lost", reason: "its Pod was deleted outside the server" };
        }
        const p = podProgress(pod);
        if (p.state === "terminated") return { kind: "exited", exit: p.exit };
        if (p.state === "failed")
          return { kind: "lost", reason: `${p.reason}${p.message ? `: ${p.message}` : ""}` };
        return undefined;
      })
      .then(async (end) => {
        await Promise.race([logsDrained(), new Promise((r) => setTimeout(r, LOG_DRAIN_MS).unref())]);
        return end;
      });
  }

  get sandboxId(): string {
    return this.id;
  }

  ended(): Promise<ContainerEnd> {
    return this.#ended;
  }

  async probePort(port: number): Promise<boolean> {
    const host = (await this.sandbox.info().catch(() => undefined))?.address;
    if (!host) return false;
    return new Promise((resolve) => {
      const socket = connect({ host, port, timeout: PROBE_TIMEOUT_MS });
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.once("connect", () => done(true));
      socket.once("timeout", () => done(false));
      socket.once("error", () => done(false));
    });
  }

  async stop(gracePeriodSeconds: number): Promise<void> {
    this.#stopping = true;
    try {
      await this.remove(gracePeriodSeconds);
    } catch (err) {
      throw ChalkError.from(err);
    }
  }
}
