import { ChalkError, Code } from "@chalk/core";
import {
  type ExecResult,
  execBuffered,
  type Process,
  type ProcessExit,
  type Sandbox,
  type SandboxInfo,
  type SignalLike,
  type SpawnOptions,
  signalNumber,
} from "@chalk/sandbox";
import type { KubeConfig, V1Pod } from "@kubernetes/client-node";
import { ENVIRONMENT_ANNOTATION, MAIN_CONTAINER } from "./kubernetes-names.js";
import { runSmall, spawnInPod } from "./pod-exec.js";
import { podProgress } from "./pod-status.js";
import type { PodWatch } from "./pod-watch.js";

/** The label the sandbox service scopes sandboxes by (as `@chalk/sandbox/server`'s). */
export const SANDBOX_ENVIRONMENT_LABEL = "chalk.environment";
/** The label that marks a sandbox as a container's (as the local backend's). */
export const SANDBOX_CONTAINER_LABEL = "chalk.container";

/** What a Pod sandbox needs to reach its Pod and delete it. */
export interface PodSandboxContext {
  kc: KubeConfig;
  watch: PodWatch;
  /** Deletes the Pod (and what it owns) with a grace period, and resolves once it is gone. */
  remove(gracePeriodSeconds: number): Promise<void>;
}

/**
 * A Pod seen as a {@link Sandbox}: processes through the Pod exec API ({@link spawnInPod}), the
 * state from the Pod watch, `signal` by `kill -1`-style execs inside, `wait` on the main container's
 * end, `stop` by deleting the Pod. The sandbox id is the container id.
 */
export class PodSandbox implements Sandbox {
  constructor(
    readonly id: string,
    readonly namespace: string,
    readonly podName: string,
    private readonly ctx: PodSandboxContext,
    private readonly extraLabels: Record<string, string>,
  ) {}

  #target() {
    return { namespace: this.namespace, pod: this.podName, container: MAIN_CONTAINER };
  }

  async info(): Promise<SandboxInfo> {
    const pod = this.ctx.watch.get(this.id);
    if (!pod) throw new ChalkError(Code.NotFound, `sandbox ${JSON.stringify(this.id)} not found`);
    return infoOf(this.id, pod, this.extraLabels);
  }

  async spawn(argv: readonly string[], options: SpawnOptions = {}): Promise<Process> {
    if (argv.length === 0) throw new ChalkError(Code.InvalidArgument, "argv: empty", { field: "argv" });
    options.signal?.throwIfAborted();
    const progress = podProgress(this.ctx.watch.get(this.id) ?? {});
    if (progress.state !== "running")
      throw new ChalkError(Code.FailedPrecondition, `sandbox ${this.id} is not running`);
    return spawnInPod(this.ctx.kc, this.#target(), argv, options);
  }

  exec(...args: Parameters<Sandbox["exec"]>): Promise<ExecResult> {
    return execBuffered(this, args);
  }

  async signal(signal: SignalLike): Promise<void> {
    // Every process of the Pod but its PID 1, the pause process (the Pod shares one PID namespace):
    // the entrypoint and every exec.
    const n = signalNumber(signal);
    const code = await runSmall(this.ctx.kc, this.#target(), ["/bin/sh", "-c", `kill -${n} -1`]);
    if (code !== 0) throw new ChalkError(Code.FailedPrecondition, `signal: kill -${n} -1 failed in the Pod`);
  }

  wait(): Promise<ProcessExit> {
    return this.ctx.watch.until(this.id, (pod) => {
      if (!pod) return { exitCode: null, signal: "SIGKILL", timedOut: false, oomKilled: false };
      const p = podProgress(pod);
      return p.state === "terminated" ? p.exit : undefined;
    });
  }

  async stop(options: { gracePeriodSeconds?: number } = {}): Promise<void> {
    await this.ctx.remove(options.gracePeriodSeconds ?? 0);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** A Pod's state as {@link SandboxInfo}. */
export function infoOf(id: string, pod: V1Pod, extraLabels: Record<string, string>): SandboxInfo {
  const p = podProgress(pod);
  const limits = pod.spec?.containers?.[0]?.resources?.limits ?? {};
  return {
    id,
    state: p.state === "running" ? "running" : p.state === "pending" ? "created" : "stopped",
    createdAt: new Date(pod.metadata?.creationTimestamp ?? Date.now()),
    labels: {
      ...extraLabels,
      [SANDBOX_ENVIRONMENT_LABEL]: pod.metadata?.annotations?.[ENVIRONMENT_ANNOTATION] ?? "",
    },
    address: pod.status?.podIP || undefined,
    hostPid: undefined,
    resources: { cpu: limits.cpu, memory: limits.memory, pids: undefined },
  };
}
