import { randomUUID } from "node:crypto";
import { ChalkError, Code, notFound } from "@chalk/core";
import { type CollectedOutput, collectProcess, type Process } from "@chalk/sandbox";
import {
  CONTAINER_LIMITS,
  type ContainerSpec,
  type ContainerStatus,
  isActive,
  type SecretRef,
} from "@chalk/spec";
import type { Logger } from "pino";
import type { BackendContainer, ComputeBackend, VolumeMountRequest } from "../backend/compute-backend.js";
import type { ContainerRecord, ContainerRef } from "../backend/container-records.js";
import type { EnvironmentDefaults } from "../config.js";
import type { ExecSlots } from "../exec-slots.js";
import type { ServerMetrics } from "../metrics.js";
import { type LifecycleEvent, phaseWords, transition } from "./lifecycle.js";
import { admitResources, type ContainerResources } from "./resources.js";
import { driveRun } from "./run-driver.js";
import { type RunEvent, RunEventQueue } from "./run-events.js";
import { prepareSecrets } from "./secret-resolution.js";
import { resolveVolumeMounts } from "./volume-resolution.js";

/** Everything {@link Containers} works with. */
export interface ContainersOptions {
  backend: ComputeBackend;
  /** The default resources of an environment. */
  defaults: (environment: string) => EnvironmentDefaults;
  /** Disk limit of every container's writable layer, in bytes (`--default-disk`); undefined: none. */
  defaultDiskBytes?: number;
  /** The server's exec slots, shared with the sandbox service. */
  execSlots: ExecSlots;
  metrics: ServerMetrics;
  log: Logger;
  /** How long an entrypoint must run before its container counts as Running (tests shorten it). */
  settleMs?: number;
}

/** A run this server holds: a Pending container from its acceptance until it runs or ends. */
export interface Run {
  id: string;
  environment: string;
  spec: ContainerSpec;
  resources: ContainerResources;
  secrets: SecretRef[];
  mounts: VolumeMountRequest[];
  readyTimeoutSecs: number;
  /** Aborted by a stop or the deadline: every phase stops waiting. */
  abort: AbortController;
  started: boolean;
  /** Settles once the run's worker is done (at once while it has not started). */
  settled: Promise<void>;
  listeners: Set<RunEventQueue>;
  deadline: NodeJS.Timeout | undefined;
}

/** A container the backend runs, as this server tracks it. */
export interface LiveContainer {
  container: BackendContainer;
  /** When an exec in it was last killed for memory (for wording the container's end). */
  execOomAt?: number;
}

/** Options of an exec. */
export interface ContainerExecOptions {
  timeoutSecs?: number;
  stdin?: Uint8Array;
  env?: Record<string, string>;
  workdir?: string;
  /** The caller went away: a waiting exec leaves the queue, a running one is killed. */
  signal?: AbortSignal;
}

/**
 * The container service's logic over a {@link ComputeBackend}: it accepts containers (validated
 * spec, admitted resources, prepared secrets and volumes, a reserved name), drives their runs
 * through the phases, is the one owner of every lifecycle transition (each atomic in the
 * backend's records), stops containers in any phase, runs execs within a bound, serves logs, and
 * reconciles with the backend at start. It knows no host path and no machine.
 */
export class Containers {
  readonly backend: ComputeBackend;
  readonly log: Logger;
  readonly metrics: ServerMetrics;
  readonly settleMs: number | undefined;
  /** Runs in progress, by container id. */
  readonly runs = new Map<string, Run>();
  /** Containers the backend runs, by container id. */
  readonly live = new Map<string, LiveContainer>();
  readonly #finishing = new Map<string, Promise<void>>();
  /** The grace period of a stop in progress, for whoever removes the container first. */
  readonly #stopGrace = new Map<string, number>();
  readonly #execSlots: ExecSlots;
  readonly #defaults: ContainersOptions["defaults"];
  readonly #defaultDiskBytes: number | undefined;

  constructor(o: ContainersOptions) {
    this.backend = o.backend;
    this.log = o.log;
    this.metrics = o.metrics;
    this.settleMs = o.settleMs ?? o.backend.entrypointSettleMs;
    this.#defaults = o.defaults;
    this.#defaultDiskBytes = o.defaultDiskBytes;
    this.#execSlots = o.execSlots;
  }

  /** Applies a lifecycle event atomically; the new record, or undefined when it does not apply. */
  apply(id: string, event: LifecycleEvent): Promise<ContainerRecord | undefined> {
    return this.backend.records.update(id, (current) => transition(current, event));
  }

  // ---------------------------------------------------------------- accept

  /**
   * Accepts a container (CreateContainer): everything is checked before anything is kept, then its
   * name is reserved and it is Pending in phase `upload`. With an upload, `uploadVolume` says
   * whether the server creates the volume (`create`; it must not exist) or the client filled one
   * already (`existing`, RunContainer's way). The run deadline starts now.
   */
  async accept(
    environment: string,
    spec: ContainerSpec,
    readyTimeoutSecs: number,
    uploadVolume: "create" | "existing",
  ): Promise<ContainerRecord> {
    const { backend } = this;
    backend.images.check(spec.image, "spec.image");
    const resources = admitResources(
      spec,
      this.#defaults(environment),
      await backend.capacity(),
      backend.name,
      this.#defaultDiskBytes,
    );
    const mounts = await resolveVolumeMounts(backend.volumes, environment, spec.volumes, spec.upload);
    if (spec.upload) await this.#checkUploadVolume(environment, spec.upload.volumeName, uploadVolume);
    const id = randomUUID();
    const secrets = await prepareSecrets(backend.secrets, environment, id, spec.secrets);
    const now = Date.now();
    const record: ContainerRecord = {
      id,
      environment,
      name: spec.name,
      status: "Pending",
      phase: "upload",
      statusMessage: phaseWords("upload"),
      reason: "",
      createdAt: now,
      stoppedAt: undefined,
      deadlineAt: now + readyTimeoutSecs * 1000,
      imageUri: spec.image.kind === "uri" ? spec.image.uri : "",
      imageDigest: "",
      cpuMillis: resources.cpuMillis,
      memoryBytes: resources.memoryBytes,
      gpu: spec.gpu ?? "",
      env: spec.env,
      secrets,
      volumes: spec.volumes,
      port: spec.port ?? 0,
      entrypoint: spec.entrypoint,
      readiness: spec.readiness,
      uploadVolume: spec.upload?.volumeName,
      cleanedUp: false,
      address: "",
      sandboxId: "",
      exitCode: undefined,
    };
    // The upload volume exists before the name is reserved: from the reservation on, a stop may
    // come from anywhere, and it must find everything the container owns.
    const createdVolume = spec.upload && uploadVolume === "create" ? spec.upload.volumeName : undefined;
    try {
      if (createdVolume) await backend.volumes.create(environment, createdVolume);
      await backend.records.reserve(record);
    } catch (err) {
      await backend.secrets.deleteOwner(environment, id).catch(() => undefined);
      if (createdVolume) await backend.volumes.delete(environment, createdVolume).catch(() => undefined);
      throw err;
    }
    const run: Run = {
      id,
      environment,
      spec,
      resources,
      secrets,
      mounts,
      readyTimeoutSecs,
      abort: new AbortController(),
      started: false,
      settled: Promise.resolve(),
      listeners: new Set(),
      deadline: undefined,
    };
    this.runs.set(id, run);
    run.deadline = setTimeout(() => {
      this.#deadline(run).catch((err: unknown) =>
        this.log.error({ container: id, error: ChalkError.from(err).message }, "run deadline"),
      );
    }, readyTimeoutSecs * 1000);
    run.deadline.unref();
    this.log.info({ container: id, env: environment, name: spec.name }, "container accepted");
    return record;
  }

  async #checkUploadVolume(environment: string, name: string, how: "create" | "existing"): Promise<void> {
    const exists = await this.backend.volumes.require(environment, name).then(
      () => true,
      (err: unknown) => {
        if (ChalkError.from(err).code === Code.NotFound) return false;
        throw err;
      },
    );
    if (how === "create" && exists) {
      throw new ChalkError(
        Code.AlreadyExists,
        `spec.upload.volume_name: volume ${JSON.stringify(name)} exists already; an upload volume is made for one container`,
        { field: "spec.upload.volume_name" },
      );
    }
    if (how === "existing" && !exists) {
      throw new ChalkError(Code.NotFound, `spec.upload: volume ${JSON.stringify(name)} not found`, {
        field: "spec.upload.volume_name",
      });
    }
  }

  // ---------------------------------------------------------------- run

  /**
   * Starts an accepted container (StartContainer) and streams its run: build output, then the
   * container once it is Running or has ended. A run already started is joined; a container that
   * is not Pending any more is returned at once. The run goes on if the reader goes away.
   */
  async *start(environment: string, ref: ContainerRef): AsyncGenerator<RunEvent> {
    const record = await this.find(environment, ref);
    const run = this.runs.get(record.id);
    if (!run) {
      yield { kind: "container", container: await this.#outcome(record.id) };
      return;
    }
    const queue = new RunEventQueue();
    run.listeners.add(queue);
    if (!run.started) {
      run.started = true;
      run.settled = (async () => {
        if (await this.apply(run.id, { type: "start" })) await driveRun(this, run);
      })()
        .catch((err: unknown) => {
          this.log.error(
            { container: run.id, error: ChalkError.from(err).message },
            "run failed unexpectedly",
          );
        })
        .finally(() => this.#retire(run));
    }
    void run.settled
      .then(async () => queue.push({ kind: "container", container: await this.#outcome(run.id) }))
      .catch((err: unknown) =>
        this.log.error({ container: run.id, error: ChalkError.from(err).message }, "run outcome"),
      )
      .finally(() => queue.close());
    try {
      yield* queue;
    } finally {
      run.listeners.delete(queue);
    }
  }

  /** Accepts and starts in one call (RunContainer): the accepted container first, then the run. */
  async *run(environment: string, spec: ContainerSpec, readyTimeoutSecs: number): AsyncGenerator<RunEvent> {
    const record = await this.accept(environment, spec, readyTimeoutSecs, "existing");
    yield { kind: "container", container: record };
    yield* this.start(environment, { id: record.id });
  }

  /** Sends an event to everyone reading the run. */
  emit(run: Run, event: RunEvent): void {
    for (const q of run.listeners) q.push(event);
  }

  /** Forgets a run that ended or reached Running. Whoever ended it removes what it held. */
  #retire(run: Run): void {
    if (run.deadline) clearTimeout(run.deadline);
    run.deadline = undefined;
    this.runs.delete(run.id);
  }

  /** The run deadline passed: a run that is still Pending fails in its phase. */
  async #deadline(run: Run): Promise<void> {
    const failed = await this.apply(run.id, { type: "deadline", readyTimeoutSecs: run.readyTimeoutSecs });
    if (!failed) return;
    this.log.warn({ container: run.id, phase: failed.phase }, "run deadline passed");
    run.abort.abort();
    await run.settled;
    this.#retire(run);
    await this.finish(run.id);
  }

  /** The record a run ended with, once what it owned is cleaned up. */
  async #outcome(id: string): Promise<ContainerRecord> {
    const record = await this.backend.records.get(id);
    if (!record) throw notFound("container", id);
    if (isActive(record.status)) return record;
    await this.finish(id);
    return (await this.backend.records.get(id)) ?? record;
  }

  /** Watches a created container: its end sets the final status (the first final status wins). */
  watch(id: string, container: BackendContainer): void {
    void container
      .ended()
      .then(async (end) => {
        const live = this.live.get(id);
        const oomInExec = live?.execOomAt !== undefined && Date.now() - live.execOomAt < 10_000;
        const done = await this.apply(id, { type: "ended", end, oomInExec });
        if (!done) return;
        this.log.info({ container: id, status: done.status, message: done.statusMessage }, "container ended");
        await this.runs.get(id)?.settled;
        await this.finish(id);
      })
      .catch((err: unknown) =>
        this.log.error({ container: id, error: ChalkError.from(err).message }, "watch"),
      );
  }

  /**
   * Removes what an ended container holds: the backend's container (stopped with the grace
   * period), its temporary secrets and its upload volume. Named volumes stay. Idempotent.
   */
  finish(id: string, gracePeriodSeconds?: number): Promise<void> {
    let p = this.#finishing.get(id);
    if (!p) {
      const grace = gracePeriodSeconds ?? this.#stopGrace.get(id) ?? 0;
      p = this.#finishNow(id, grace).finally(() => {
        this.#finishing.delete(id);
        this.#stopGrace.delete(id);
      });
      this.#finishing.set(id, p);
    }
    return p;
  }

  async #finishNow(id: string, gracePeriodSeconds: number): Promise<void> {
    const live = this.live.get(id);
    if (live) {
      await live.container.stop(gracePeriodSeconds).catch((err: unknown) => {
        this.log.warn({ container: id, error: ChalkError.from(err).message }, "cannot stop the container");
      });
      this.live.delete(id);
    }
    const record = await this.backend.records.get(id);
    if (!record || isActive(record.status) || record.cleanedUp) return;
    try {
      await this.backend.secrets.deleteOwner(record.environment, id);
      if (record.uploadVolume) await this.backend.volumes.delete(record.environment, record.uploadVolume);
      await this.backend.records.update(id, () => ({ cleanedUp: true }));
    } catch (err) {
      this.log.warn(
        { container: id, error: ChalkError.from(err).message },
        "cleanup failed; retried at start",
      );
    }
  }

  // ---------------------------------------------------------------- stop

  /**
   * Stops a container in any phase: the stop is recorded first (so it wins over every later phase
   * of a run), then the run stops waiting, whatever it started is stopped (SIGTERM, grace period,
   * SIGKILL) and what the container owned is removed. Idempotent.
   */
  async stop(environment: string, ref: ContainerRef, gracePeriodSeconds: number): Promise<ContainerRecord> {
    const record = await this.find(environment, ref);
    if (isActive(record.status)) {
      this.#stopGrace.set(record.id, gracePeriodSeconds);
      await this.apply(record.id, { type: "stop" });
      this.log.info({ container: record.id, env: environment }, "container stopped");
      const run = this.runs.get(record.id);
      run?.abort.abort();
      await run?.settled;
    }
    await this.finish(record.id, gracePeriodSeconds);
    return (await this.backend.records.get(record.id)) ?? record;
  }

  // ---------------------------------------------------------------- reads

  /** A container of the environment by id or name; not_found otherwise. */
  async find(environment: string, ref: ContainerRef): Promise<ContainerRecord> {
    const r = await this.backend.records.find(environment, ref);
    if (!r) throw notFound("container", "id" in ref ? ref.id : ref.name);
    return r;
  }

  /** The environment's containers, newest first. */
  list(
    environment: string,
    options: { status?: ContainerStatus; limit: number },
  ): Promise<ContainerRecord[]> {
    return this.backend.records.list(environment, options);
  }

  /**
   * The main process's output (only its last `tailLines` lines when above 0); with `follow`, new
   * output until the container ended and was stopped.
   */
  logs(id: string, follow: boolean, signal: AbortSignal, tailLines = 0): AsyncIterable<Uint8Array> {
    const done = () => !this.live.has(id) && !this.runs.has(id);
    return this.backend.logs.read(id, { follow, done, signal, tailLines });
  }

  // ---------------------------------------------------------------- exec

  /**
   * Runs a command to completion in a Running container, within the exec slots (an exec without a
   * timeout counts as long-lived) and output limits. A caller that goes away takes its exec out of
   * the queue, or kills it.
   */
  async exec(
    environment: string,
    ref: ContainerRef,
    argv: string[],
    options: ContainerExecOptions,
  ): Promise<CollectedOutput> {
    const record = await this.find(environment, ref);
    if (record.status !== "Running") {
      throw new ChalkError(
        Code.FailedPrecondition,
        `container ${JSON.stringify(record.name)} is ${record.status}${record.statusMessage ? ` (${record.statusMessage})` : ""}; exec needs a Running container`,
      );
    }
    const live = this.live.get(record.id);
    if (!live)
      throw new ChalkError(
        Code.Unavailable,
        `container ${JSON.stringify(record.name)}: the server does not hold it`,
      );
    const claim = {
      container: record.id,
      environment,
      longLived: !options.timeoutSecs,
      stdinBytes: options.stdin?.byteLength ?? 0,
    };
    return this.#execSlots.run(
      claim,
      async () => {
        options.signal?.throwIfAborted();
        const proc = await live.container.sandbox.spawn(argv, {
          ...(options.timeoutSecs ? { timeoutSecs: options.timeoutSecs } : {}),
          ...(options.env && Object.keys(options.env).length > 0 ? { env: options.env } : {}),
          ...(options.workdir ? { workdir: options.workdir } : {}),
        });
        const kill = () => void proc.signal("SIGKILL").catch(() => undefined);
        options.signal?.addEventListener("abort", kill, { once: true });
        try {
          return await this.#collect(live, proc, options);
        } finally {
          options.signal?.removeEventListener("abort", kill);
        }
      },
      options.signal,
    );
  }

  async #collect(
    live: LiveContainer,
    proc: Process,
    options: ContainerExecOptions,
  ): Promise<CollectedOutput> {
    {
      const out = await collectProcess(proc, {
        ...(options.stdin ? { stdin: options.stdin } : {}),
        maxOutputBytes: CONTAINER_LIMITS.execOutputBytes,
      });
      if (out.exit.oomKilled) live.execOomAt = Date.now();
      this.metrics.bytesStreamed.inc({ kind: "exec_stdout" }, out.stdout.byteLength);
      this.metrics.bytesStreamed.inc({ kind: "exec_stderr" }, out.stderr.byteLength);
      return out;
    }
  }

  /** Stops timers. Containers keep running; runs in progress are failed at the next start. */
  close(): void {
    for (const run of this.runs.values()) if (run.deadline) clearTimeout(run.deadline);
  }
}
