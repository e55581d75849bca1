import { connect, type Socket } from "node:net";
import { ChalkError, Code } from "@chalk/core";
import type { Sandbox } from "@chalk/sandbox";
import type { BackendContainer, ContainerEnd } from "../backend/compute-backend.js";
import { connectPort } from "./connect-port.js";

/** How long a port probe waits for a connection, in milliseconds. */
const PROBE_TIMEOUT_MS = 500;

/**
 * A container of the local backend: one gVisor sandbox of a `LocalRuntime`, named after the
 * container id. Its end is watched from the moment the handle exists (the runtime reports an init's
 * exit status only to a waiter that was there before it deleted the sandbox).
 */
export class LocalContainer implements BackendContainer {
  readonly #ended: Promise<ContainerEnd>;

  constructor(
    readonly id: string,
    readonly sandbox: Sandbox,
    /** The sandbox's IPv4 address, when it has a network. */
    readonly ip: string | undefined,
    readonly port: number | undefined,
    /** Where the files agent is inside the container; undefined without one. */
    readonly filesAgentPath?: string | undefined,
  ) {
    this.#ended = sandbox.wait().then(
      (exit): ContainerEnd => ({ kind: "exited", exit }),
      (err: unknown): ContainerEnd => ({
        kind: "lost",
        reason: `the sandbox ended: ${ChalkError.from(err).rawMessage}`,
      }),
    );
  }

  get sandboxId(): string {
    return this.sandbox.id;
  }

  get address(): string | undefined {
    return this.ip && this.port ? `${this.ip}:${this.port}` : undefined;
  }

  ended(): Promise<ContainerEnd> {
    return this.#ended;
  }

  probePort(port: number): Promise<boolean> {
    const host = this.ip;
    if (!host) return Promise.resolve(false);
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

  /**
   * A TCP connection to `port` at the sandbox's own address on its veth (the host reaches every
   * port of it); failed_precondition when the container has no network.
   */
  connectPort(port: number, signal: AbortSignal): Promise<Socket> {
    if (!this.ip) {
      return Promise.reject(
        new ChalkError(
          Code.FailedPrecondition,
          `container ${this.id} has no network (it was created without a port); port forwarding needs one`,
        ),
      );
    }
    return connectPort(this.ip, port, `container ${this.id}`, signal);
  }

  async stop(gracePeriodSeconds: number): Promise<void> {
    await this.sandbox.stop({ gracePeriodSeconds });
  }
}
