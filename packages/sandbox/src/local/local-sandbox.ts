import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code, notFound } from "@chalk/core";
import { execBuffered } from "../exec.js";
import { signalNumber } from "../signals.js";
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

  async #state(ctx: RunscContext): Promise<{ state: SandboxState; pid: number | undefined }> {
    try {
      const s = JSON.parse(await runsc(ctx, ["state", this.id])) as { status: string; pid: number };
      let state: SandboxState =
        s.status === "running" ? "running" : s.status === "created" ? "created" : "stopped";
      // runsc calls a sandbox running while its process exists, and a sandbox the kernel's OOM
      // killer ended stays a zombie until the `runsc run` above it has cleaned up: dead already.
      if (state === "running" && !(await hostProcessLive(s.pid))) state = "stopped";
      return { state, pid: state === "running" && s.pid > 0 ? s.pid : undefined };
    } catch {
      return { state: "stopped", pid: undefined };
    }
  }

  /** Whether the init process has ended (the sandbox ends with it). */
  #initEnded(): boolean {
    return this.store.initEnded(this.id);
  }

  async info(): Promise<SandboxInfo> {
    const { meta, ctx } = await this.#context();
    const { state, pid } = await this.#state(ctx);
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
    const { ctx } = await this.#context();
    return LocalProcess.start({
      ctx,
      sandboxId: this.id,
      sandboxDir: this.store.sandboxDir(this.id),
      ptyRelayPath: this.store.ptyRelayPath,
      argv,
      options,
      sandboxGone: async () => this.#initEnded() || (await this.#state(ctx)).state !== "running",
      oomKills: () => oomKills(this.id),
    });
  }

  exec(...args: [...argv: string[], options: ExecOptions] | string[]): Promise<ExecResult> {
    return execBuffered(this, args);
  }

  async signal(signal: SignalLike): Promise<void> {
    const n = signalNumber(signal);
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
   * SIGTERM to every process, up to `gracePeriodSeconds` for the init process to end, SIGKILL, then
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
      await runsc(ctx, ["kill", "--all", this.id, "15"]).catch(() => undefined);
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

/** Whether host process `pid` exists and is not a zombie (`/proc/<pid>/stat`'s state field). */
async function hostProcessLive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "" && state !== "Z" && state !== "X";
}
