import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code, notFound } from "@chalk/core";
import { execBuffered } from "../exec.js";
import { sendableSignal } from "../signals.js";
import type {
  ExecOptions,
  ExecResult,
  Process,
  ProcessExit,
  Sandbox,
  SandboxInfo,
  SandboxState,
  SandboxStopOptions,
  SignalLike,
  SpawnOptions,
} from "../types.js";
import { SYSTEM_MOUNT_TARGETS } from "./bundle.js";
import { oomKills } from "./cgroups.js";
import { LocalProcess } from "./local-process.js";
import { type RunscContext, runsc } from "./runsc.js";
import type { SandboxMeta, SandboxStore } from "./sandbox-store.js";

/** A sandbox of a `LocalRuntime`: a handle on the state directory, so any process can hold one. */
export class LocalSandbox implements Sandbox {
  constructor(
    private readonly store: SandboxStore,
    readonly id: string,
  ) {}

  async #context(): Promise<{ meta: SandboxMeta; ctx: RunscContext }> {
    const meta = await this.store.readMeta(this.id);
    return { meta, ctx: await this.store.runscContext(meta.network) };
  }

  /**
   * The sandbox's state from this runtime's own records, without a `runsc state` call (a runsc
   * process per call, tens of ms on a loaded machine): the init has ended (the wrapper wrote its
   * status), or the sandbox process that `runsc run --pid-file` named is alive, not a zombie, and
   * still this sandbox's (its command line names this sandbox's bundle, so a reused pid does not
   * count). A sandbox the kernel's OOM killer ended stays a zombie until the `runsc run` above it
   * has cleaned up: dead already. No pid yet means runsc is still creating it.
   */
  #state(): { state: SandboxState; pid: number | undefined } {
    if (this.#initEnded()) return { state: "stopped", pid: undefined };
    const dir = this.store.sandboxDir(this.id);
    const pid = Number.parseInt(readText(join(dir, "sandbox.pid")), 10);
    if (!(pid > 0)) {
      return { state: existsSync(join(dir, "runsc.log")) ? "created" : "stopped", pid: undefined };
    }
    const cmdline = readText(`/proc/${pid}/cmdline`).split("\0");
    const stat = readText(`/proc/${pid}/stat`);
    const procState = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    const ours = cmdline.includes(`--bundle=${join(dir, "bundle")}`);
    return ours && procState !== "" && procState !== "Z" && procState !== "X"
      ? { state: "running", pid }
      : { state: "stopped", pid: undefined };
  }

  /** Whether the init process has ended (the sandbox ends with it). */
  #initEnded(): boolean {
    return this.store.initEnded(this.id);
  }

  async info(): Promise<SandboxInfo> {
    const meta = await this.store.readMeta(this.id);
    const { state, pid } = this.#state();
    return {
      id: this.id,
      state,
      createdAt: new Date(meta.createdAt),
      labels: meta.labels,
      address: meta.net?.address,
      hostPid: pid,
      resources: meta.resources,
    };
  }

  async spawn(argv: readonly string[], options: SpawnOptions = {}): Promise<Process> {
    options.signal?.throwIfAborted();
    const { meta, ctx } = await this.#context();
    options.signal?.throwIfAborted();
    return LocalProcess.start({
      ctx,
      sandboxId: this.id,
      sandboxDir: this.store.sandboxDir(this.id),
      rootfs: meta.merged,
      mountTargets: [...SYSTEM_MOUNT_TARGETS, ...(meta.mountTargets ?? [])],
      ptyRelayPath: this.store.ptyRelayPath,
      argv,
      options,
      sandboxGone: async () => this.#state().state !== "running",
      oomKills: () => oomKills(this.id),
    });
  }

  exec(...args: [...argv: string[], options: ExecOptions] | string[]): Promise<ExecResult> {
    return execBuffered(this, args);
  }

  async signal(signal: SignalLike): Promise<void> {
    const n = sendableSignal(signal);
    const { ctx } = await this.#context();
    await runsc(ctx, ["kill", "--all", this.id, String(n)]);
  }

  /**
   * Resolves when the init process ends. The detached shell that runs `runsc run` records the
   * status in the state directory, so a waiter in any process sees it; when this process stopped
   * the sandbox meanwhile, the status it read before deleting the state is the answer.
   */
  async wait(): Promise<ProcessExit> {
    await this.store.readMeta(this.id);
    while (!this.#initEnded()) {
      if (!existsSync(this.store.sandboxDir(this.id))) {
        const final = this.store.finalExit(this.id);
        if (final) return final;
        throw notFound("sandbox", this.id);
      }
      await sleep(50);
    }
    return (await this.store.initExit(this.id)) ?? this.store.finalExit(this.id) ?? this.#gone();
  }

  #gone(): never {
    throw notFound("sandbox", this.id);
  }

  /**
   * SIGTERM to the init process (PID 1, as `docker stop`; the reaping init forwards it to the
   * entrypoint), up to `gracePeriodSeconds` for it to end, SIGKILL to every process, then
   * deletes the sandbox, its writable layer (unless the caller owns it), network and cgroups.
   * Stopping a stopped or vanished sandbox does nothing.
   */
  async stop(options: SandboxStopOptions = {}): Promise<void> {
    const grace = options.gracePeriodSeconds ?? 0;
    if (!(typeof grace === "number" && grace >= 0 && grace <= 86_400)) {
      throw new ChalkError(Code.InvalidArgument, `gracePeriodSeconds: ${grace}; accepted: 0 to 86400`, {
        field: "gracePeriodSeconds",
      });
    }
    let context: { meta: SandboxMeta; ctx: RunscContext };
    try {
      context = await this.#context();
    } catch (err) {
      if (ChalkError.from(err).code === Code.NotFound) return;
      throw err;
    }
    const { meta, ctx } = context;
    if (grace > 0 && !this.#initEnded()) {
      // SIGTERM to PID 1 only, as `docker stop` does: the reaping init (tini) forwards it to the
      // entrypoint. `--all` would signal every process as well, so the entrypoint got it twice.
      await runsc(ctx, ["kill", this.id, "15"]).catch(() => undefined);
      const deadline = Date.now() + grace * 1000;
      while (Date.now() < deadline && !this.#initEnded()) await sleep(50);
    }
    await runsc(ctx, ["kill", "--all", this.id, "9"]).catch(() => undefined);
    await this.store.destroy(meta);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** A small file's text (state files, procfs), or "" when it is not there. */
function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
