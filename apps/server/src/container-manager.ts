import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { totalmem } from "node:os";
import { join } from "node:path";
import {
  CONTAINER_LIMITS,
  checkCommand,
  checkContainerName,
  checkEnv,
  checkMountPath,
  checkPort,
  checkResources,
} from "@chalk/container";
import { ChalkError, Code, formatBytes, invalidArgument, notFound, parseCpu, parseMemory } from "@chalk/core";
import type { ProcessExit, Sandbox, SandboxMount, SandboxRuntime } from "@chalk/sandbox";
import { readInitLog } from "@chalk/sandbox/local";
import { checkSecretName, checkSecretValue } from "@chalk/secrets";
import { checkVolumeName, parseVolumePath } from "@chalk/volume";
import type { Logger } from "pino";
import { environmentDefaults, type ServerConfig } from "./config.js";
import type { BuildLogEvent, ImageProvider, ImageSourceInput } from "./images.js";
import type { ServerMetrics } from "./metrics.js";
import { Semaphore } from "./semaphore.js";
import {
  ACTIVE_STATUSES,
  type ContainerRecord,
  type ContainerStatus,
  type SecretRefRecord,
  type StateStore,
} from "./state.js";

/** The label that marks a sandbox as a container's (value: the container id). */
export const CONTAINER_LABEL = "chalk.container";
/** The label the sandbox service scopes sandboxes by (same as `@chalk/sandbox/server`'s). */
export const ENVIRONMENT_LABEL = "chalk.environment";

/** A secret reference with the value of a local-env secret, as a run request carries it. */
export type SecretSourceInput =
  | { kind: "secret"; name: string }
  | { kind: "integration"; name: string; keys: string[] }
  | { kind: "local_env"; name: string; value: string };

/** A run request, decoded from the wire but not yet validated. */
export interface RunInput {
  name: string;
  image: ImageSourceInput | undefined;
  cpu: string;
  memory: string;
  gpu: string;
  env: Record<string, string>;
  secrets: SecretSourceInput[];
  volumes: { name: string; mountPath: string; readOnly: boolean }[];
  port: number;
  entrypoint: string[];
  upload: { volumeName: string; targets: { source: string; target: string }[] } | undefined;
}

/** What the server needs of the secret store (`@chalk/secrets/host`'s SecretStore). */
export interface SecretsProvider {
  setTemporary(environment: string, owner: string, name: string, value: string): void;
  resolve(
    environment: string,
    specs: readonly { kind: "env" | "integration" | "localEnv"; name: string; keys?: string[] }[],
    options: { owner?: string },
  ): Record<string, string>;
  deleteOwner(environment: string, owner: string): number;
}

/** What the server needs of the volume store (`@chalk/volume/host`'s VolumeStore). */
export interface VolumesProvider {
  hostPath(environment: string, name: string): Promise<string>;
  delete(environment: string, name: string): Promise<void>;
}

/** Everything the container manager works with. */
export interface ContainerManagerDeps {
  config: ServerConfig;
  state: StateStore;
  runtime: SandboxRuntime;
  images: ImageProvider;
  volumes: VolumesProvider;
  secrets: SecretsProvider;
  metrics: ServerMetrics;
  log: Logger;
  /** True when this machine can give containers a GPU. */
  hasGpu: boolean;
}

/** An event of a run: build output, then the container. */
export type RunEvent =
  | { kind: "build_log"; log: BuildLogEvent }
  | { kind: "container"; container: ContainerRecord };

/** The result of a container exec. */
export interface ContainerExecResult {
  stdout: Uint8Array;
  stderr: Uint8Array;
  exit: ProcessExit;
}

/** Largest stdout (and, separately, stderr) a unary exec returns, in bytes. */
export const EXEC_OUTPUT_LIMIT = 3 * 1024 * 1024;

/** A reference to a container: by id or by name. */
export type ContainerRef = { id: string } | { name: string };

const secretKindName: Record<SecretSourceInput["kind"], "env" | "integration" | "localEnv"> = {
  secret: "env",
  integration: "integration",
  local_env: "localEnv",
};

/**
 * The container service's logic: validates and runs containers as sandboxes, records them in SQLite,
 * watches their entrypoints, reconciles with the runtime on start, and cleans up what a run owned.
 */
export class ContainerManager {
  private readonly sandboxes = new Map<string, Promise<Sandbox>>();
  private readonly stopping = new Set<string>();
  private readonly watched = new Set<string>();
  private readonly logsDir: string;
  /** Bounds concurrent execs: each one is a runsc process on the host. */
  private readonly execSlots: Semaphore;

  constructor(private readonly deps: ContainerManagerDeps) {
    this.logsDir = join(deps.config.dataDir, "logs");
    this.execSlots = new Semaphore(deps.config.maxConcurrentExecs);
    mkdirSync(this.logsDir, { recursive: true, mode: 0o700 });
  }

  // ---------------------------------------------------------------- validation

  /** Validates a run request completely (everything that needs no I/O). */
  private validate(environment: string, input: RunInput) {
    const name = checkContainerName(input.name, "spec.name");
    if (!input.image) throw invalidArgument("spec.image", "required", "an image spec or an image URI");
    if (
      input.image.kind === "uri" &&
      (input.image.uri === "" || input.image.uri.length > 1024 || /[\s\0]/.test(input.image.uri))
    ) {
      throw invalidArgument(
        "spec.image.uri",
        `${JSON.stringify(input.image.uri.slice(0, 80))} is not an image reference`,
      );
    }
    if (
      input.image.kind === "spec" &&
      (input.image.spec.byteLength === 0 || input.image.spec.byteLength > 1024 * 1024)
    ) {
      throw invalidArgument(
        "spec.image.spec",
        `${input.image.spec.byteLength} bytes; accepted: 1 byte to 1 MiB`,
      );
    }
    this.deps.images.check(input.image, "spec.image");
    const parsed = checkResources({ cpu: input.cpu, memory: input.memory, gpu: input.gpu });
    if (parsed.gpu && !this.deps.hasGpu) {
      throw new ChalkError(
        Code.FailedPrecondition,
        `gpu: ${JSON.stringify(input.gpu)} requested, but this server's local backend has no GPU (no NVIDIA device on this machine); run without gpu, or on a server with GPU nodes`,
        { field: "gpu" },
      );
    }
    const defaults = environmentDefaults(this.deps.config, environment);
    const cpuMillis = parsed.cpuMillis ?? parseCpu(defaults.cpu, "cpu");
    const memoryBytes = parsed.memoryBytes ?? parseMemory(defaults.memory, "memory");
    if (memoryBytes > totalmem()) {
      throw new ChalkError(
        Code.FailedPrecondition,
        `memory: ${formatBytes(memoryBytes)} requested, but this machine has ${formatBytes(totalmem())}`,
        { field: "memory" },
      );
    }
    const env = checkEnv(input.env, "spec.env");
    if (input.secrets.length > CONTAINER_LIMITS.secrets) {
      throw invalidArgument(
        "spec.secrets",
        `${input.secrets.length} secrets; at most ${CONTAINER_LIMITS.secrets}`,
      );
    }
    input.secrets.forEach((s, i) => {
      const field = `spec.secrets[${i}]`;
      if (!s) throw invalidArgument(field, "empty secret source", "secret, integration or local_env");
      checkSecretName(s.name, `${field}.name`);
      if (s.kind === "integration") {
        for (const [j, k] of s.keys.entries()) checkSecretName(k, `${field}.keys[${j}]`);
      }
      if (s.kind === "local_env") checkSecretValue(s.value, `${field}.value`);
    });
    if (input.volumes.length > CONTAINER_LIMITS.volumes) {
      throw invalidArgument(
        "spec.volumes",
        `${input.volumes.length} volumes; at most ${CONTAINER_LIMITS.volumes}`,
      );
    }
    const targets = new Set<string>();
    const claim = (path: string, field: string) => {
      if (targets.has(path)) throw invalidArgument(field, `${JSON.stringify(path)} is mounted twice`);
      targets.add(path);
    };
    input.volumes.forEach((v, i) => {
      checkVolumeName(v.name, `spec.volumes[${i}].name`);
      claim(checkMountPath(v.mountPath, `spec.volumes[${i}].mount_path`), `spec.volumes[${i}].mount_path`);
    });
    if (input.upload) {
      checkVolumeName(input.upload.volumeName, "spec.upload.volume_name");
      if (input.upload.targets.length > 10_000)
        throw invalidArgument("spec.upload.targets", "more than 10000");
      input.upload.targets.forEach((t, i) => {
        parseVolumePath(t.source, `spec.upload.targets[${i}].source`);
        claim(
          checkMountPath(t.target, `spec.upload.targets[${i}].target`),
          `spec.upload.targets[${i}].target`,
        );
      });
    }
    const port = checkPort(input.port, "spec.port");
    const entrypoint = input.entrypoint.length > 0 ? checkCommand(input.entrypoint, "spec.entrypoint") : [];
    return { name, image: input.image, cpuMillis, memoryBytes, env, port, entrypoint };
  }

  // ---------------------------------------------------------------- run

  /**
   * Runs a container. Validation, name, secrets and volumes are checked before anything is created;
   * then the image is got or built (its log goes to the returned events), the sandbox starts, and
   * the last event carries the container (Running, or Failed with the reason).
   */
  async *run(environment: string, input: RunInput, signal: AbortSignal): AsyncGenerator<RunEvent> {
    const v = this.validate(environment, input);
    const { state, secrets, volumes } = this.deps;
    const taken = state.byName(environment, v.name);
    if (taken && ACTIVE_STATUSES.includes(taken.status)) {
      throw new ChalkError(
        Code.AlreadyExists,
        `container ${JSON.stringify(v.name)} already exists (id ${taken.id}, ${taken.status}); stop it first or pick another name`,
        { field: "name" },
      );
    }
    // Named volumes must exist; their host paths are looked up now so nothing starts without them.
    const mounts: SandboxMount[] = [];
    for (const [i, vol] of input.volumes.entries()) {
      const source = await volumes.hostPath(environment, vol.name).catch((err: unknown) => {
        throw ChalkError.from(err).code === Code.NotFound
          ? new ChalkError(
              Code.NotFound,
              `spec.volumes[${i}]: volume ${JSON.stringify(vol.name)} not found`,
              {
                field: `spec.volumes[${i}].name`,
              },
            )
          : err;
      });
      mounts.push({ source, target: vol.mountPath, readOnly: vol.readOnly });
    }
    if (input.upload) {
      const root = await volumes.hostPath(environment, input.upload.volumeName).catch((err: unknown) => {
        throw ChalkError.from(err).code === Code.NotFound
          ? new ChalkError(
              Code.NotFound,
              `spec.upload: volume ${JSON.stringify(input.upload?.volumeName)} not found`,
            )
          : err;
      });
      for (const t of input.upload.targets) {
        mounts.push({ source: join(root, ...parseVolumePath(t.source)), target: t.target, readOnly: true });
      }
    }
    const id = randomUUID();
    const secretRefs: SecretRefRecord[] = input.secrets.map((s) =>
      s.kind === "integration"
        ? { kind: s.kind, name: s.name, keys: s.keys }
        : { kind: s.kind, name: s.name },
    );
    // Secrets: local values are stored for this container only; everything is resolved now, so a
    // missing secret stops the run before anything starts.
    let secretEnv: Record<string, string>;
    try {
      for (const s of input.secrets)
        if (s.kind === "local_env") secrets.setTemporary(environment, id, s.name, s.value);
      secretEnv = secrets.resolve(
        environment,
        input.secrets.map((s) => ({
          kind: secretKindName[s.kind],
          name: s.name,
          ...(s.kind === "integration" && s.keys.length > 0 ? { keys: s.keys } : {}),
        })),
        { owner: id },
      );
    } catch (err) {
      secrets.deleteOwner(environment, id);
      throw err;
    }
    const record: ContainerRecord = {
      id,
      environment,
      name: v.name,
      status: "Pending",
      statusMessage: "building the image",
      createdAt: Date.now(),
      stoppedAt: undefined,
      imageUri: input.image?.kind === "uri" ? input.image.uri : "",
      imageDigest: "",
      cpuMillis: v.cpuMillis,
      memoryBytes: v.memoryBytes,
      gpu: input.gpu,
      env: v.env,
      secrets: secretRefs,
      volumes: input.volumes,
      port: v.port ?? 0,
      entrypoint: v.entrypoint,
      uploadVolume: input.upload?.volumeName,
      cleanedUp: false,
      address: "",
      sandboxId: "",
      exitCode: undefined,
      logPath: join(this.logsDir, `${id}.log`),
    };
    try {
      state.insert(record);
    } catch (err) {
      secrets.deleteOwner(environment, id);
      throw err;
    }
    const log = this.deps.log.child({ container: id, env: environment, name: v.name });
    log.info("container accepted");

    // From here on the run proceeds even if the caller goes away; failures become status FAILED.
    const events: RunEvent[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    const push = (e: RunEvent) => {
      events.push(e);
      wake?.();
    };
    const work = this.start(
      record,
      v,
      mounts,
      secretEnv,
      (l) => push({ kind: "build_log", log: l }),
      log,
    ).finally(() => {
      finished = true;
      wake?.();
    });
    while (!finished || events.length > 0) {
      const e = events.shift();
      if (e) {
        yield e;
        continue;
      }
      if (signal.aborted) break;
      await new Promise<void>((r) => {
        wake = r;
      });
      wake = undefined;
    }
    yield { kind: "container", container: await work };
  }

  private async start(
    record: ContainerRecord,
    v: ReturnType<ContainerManager["validate"]>,
    mounts: SandboxMount[],
    secretEnv: Record<string, string>,
    onLog: (l: BuildLogEvent) => void,
    log: Logger,
  ): Promise<ContainerRecord> {
    const { state, images, runtime, metrics } = this.deps;
    const id = record.id;
    let sandbox: Sandbox | undefined;
    try {
      const began = performance.now();
      let image: Awaited<ReturnType<ImageProvider["resolve"]>>;
      try {
        image = await images.resolve(v.image, record.environment, (l) => {
          metrics.bytesStreamed.inc({ kind: "build_log" }, Buffer.byteLength(l.text));
          onLog(l);
        });
        metrics.buildSeconds.observe(
          { result: image.cached ? "cached" : "built" },
          (performance.now() - began) / 1000,
        );
      } catch (err) {
        metrics.buildSeconds.observe({ result: "failed" }, (performance.now() - began) / 1000);
        const e = ChalkError.from(err);
        throw new ChalkError(e.code, `image: ${e.rawMessage}`, { cause: err });
      }
      state.update(id, { imageUri: image.imageUri, imageDigest: image.digest, statusMessage: "starting" });
      const command = v.entrypoint.length > 0 ? v.entrypoint : image.entrypoint;
      sandbox = await runtime.create({
        id,
        rootfs: image.rootfs,
        ...(command.length > 0
          ? { command, logPath: record.logPath, logMaxBytes: this.deps.config.containerLogMaxBytes }
          : {}),
        ...(this.deps.config.defaultDisk ? { disk: this.deps.config.defaultDisk } : {}),
        env: { ...image.env, ...v.env, ...secretEnv },
        ...(image.workdir ? { workdir: image.workdir } : {}),
        cpu: `${v.cpuMillis}m`,
        memory: String(v.memoryBytes),
        ...(v.port ? { network: { ports: [v.port] } } : {}),
        mounts,
        labels: { [CONTAINER_LABEL]: id, [ENVIRONMENT_LABEL]: record.environment },
      });
      // Wait at once: the runtime reports an exit status only to a waiter that was there before.
      const exited = sandbox.wait();
      exited.catch(() => undefined);
      const info = await sandbox.info();
      const address = v.port && info.address ? `${info.address}:${v.port}` : "";
      this.sandboxes.set(id, Promise.resolve(sandbox));
      const running = state.update(id, {
        status: "Running",
        statusMessage: "",
        sandboxId: sandbox.id,
        address,
        entrypoint: command,
      });
      log.info({ sandbox: sandbox.id, address: address || undefined }, "container running");
      this.watch(running, sandbox, exited);
      return running;
    } catch (err) {
      const e = ChalkError.from(err);
      log.warn({ error: e.message }, "container failed to start");
      if (sandbox) await sandbox.stop().catch(() => undefined);
      const failed =
        state.finish(id, { status: "Failed", statusMessage: e.rawMessage }) ?? state.byIdAnyEnvironment(id)!;
      await this.cleanup(failed);
      return state.byIdAnyEnvironment(id) ?? failed;
    }
  }

  /** Watches a running container's sandbox: its init's exit sets the final status. */
  private watch(
    record: ContainerRecord,
    sandbox: Sandbox,
    exited: Promise<ProcessExit> = sandbox.wait(),
  ): void {
    if (this.watched.has(record.id)) return;
    this.watched.add(record.id);
    const id = record.id;
    const hasEntrypoint = record.entrypoint.length > 0;
    void (async () => {
      let exit: ProcessExit | undefined;
      let reason = "";
      try {
        exit = await exited;
      } catch (err) {
        reason = ChalkError.from(err).rawMessage;
      }
      this.watched.delete(id);
      if (this.stopping.has(id)) return;
      const status = exit && hasEntrypoint && exit.exitCode === 0 ? "Succeeded" : "Failed";
      const message = !exit
        ? `the sandbox ended: ${reason}`
        : exit.oomKilled
          ? "out of memory: the entrypoint was killed by the OOM killer"
          : exit.exitCode !== null
            ? hasEntrypoint
              ? `the entrypoint exited with code ${exit.exitCode}`
              : `the container's idle process exited with code ${exit.exitCode}`
            : exit.signal
              ? `the entrypoint was killed by ${exit.signal}`
              : "the entrypoint ended, but the runtime did not report its exit status";
      const done = this.deps.state.finish(id, {
        status,
        statusMessage: status === "Succeeded" ? "the entrypoint exited with code 0" : message,
        ...(exit?.exitCode !== null && exit?.exitCode !== undefined ? { exitCode: exit.exitCode } : {}),
      });
      if (!done) return;
      this.deps.log.info({ container: id, status, message }, "container ended");
      this.sandboxes.delete(id);
      await sandbox.stop().catch(() => undefined);
      await this.cleanup(done);
    })();
  }

  /** Removes what a finished run owned: its upload volume and its local-env secrets. Named volumes stay. */
  private async cleanup(record: ContainerRecord): Promise<void> {
    if (record.cleanedUp) return;
    try {
      this.deps.secrets.deleteOwner(record.environment, record.id);
      if (record.uploadVolume) {
        await this.deps.volumes.delete(record.environment, record.uploadVolume).catch((err: unknown) => {
          if (ChalkError.from(err).code !== Code.NotFound) throw err;
        });
      }
      this.deps.state.update(record.id, { cleanedUp: true });
    } catch (err) {
      this.deps.log.warn(
        { container: record.id, error: ChalkError.from(err).message },
        "cleanup failed; retried at start",
      );
    }
  }

  // ---------------------------------------------------------------- reads

  /** Finds a container of the environment by id or name; not_found otherwise. */
  find(environment: string, ref: ContainerRef): ContainerRecord {
    const r =
      "id" in ref ? this.deps.state.byId(environment, ref.id) : this.deps.state.byName(environment, ref.name);
    if (!r) throw notFound("container", "id" in ref ? ref.id : ref.name);
    return r;
  }

  /** The environment's containers, newest first. */
  list(environment: string, options: { status?: ContainerStatus; limit: number }): ContainerRecord[] {
    return this.deps.state.list(environment, options);
  }

  private sandboxOf(record: ContainerRecord): Promise<Sandbox> {
    let s = this.sandboxes.get(record.id);
    if (!s) {
      s = this.deps.runtime.get(record.sandboxId);
      s.catch(() => this.sandboxes.delete(record.id));
      this.sandboxes.set(record.id, s);
    }
    return s;
  }

  // ---------------------------------------------------------------- stop

  /** Stops a container (SIGTERM, grace, SIGKILL) and removes what the run owned. Idempotent. */
  async stop(environment: string, ref: ContainerRef, gracePeriodSeconds: number): Promise<ContainerRecord> {
    const record = this.find(environment, ref);
    if (!ACTIVE_STATUSES.includes(record.status)) {
      await this.cleanup(record);
      return this.deps.state.byIdAnyEnvironment(record.id) ?? record;
    }
    this.stopping.add(record.id);
    try {
      if (record.sandboxId) {
        const sandbox = await this.sandboxOf(record).catch(() => undefined);
        await sandbox?.stop({ gracePeriodSeconds });
      }
      const stopped = this.deps.state.finish(record.id, {
        status: "Stopped",
        statusMessage: "stopped by request",
      });
      this.sandboxes.delete(record.id);
      this.deps.log.info({ container: record.id, env: environment }, "container stopped");
      const current = stopped ?? this.deps.state.byIdAnyEnvironment(record.id)!;
      await this.cleanup(current);
      return this.deps.state.byIdAnyEnvironment(record.id) ?? current;
    } finally {
      this.stopping.delete(record.id);
    }
  }

  // ---------------------------------------------------------------- exec

  /** Runs a command to completion in a running container, with bounded output. */
  async exec(
    environment: string,
    ref: ContainerRef,
    command: string[],
    options: { timeoutSecs?: number; stdin?: Uint8Array; env?: Record<string, string>; workdir?: string },
  ): Promise<ContainerExecResult> {
    const record = this.find(environment, ref);
    if (record.status !== "Running") {
      throw new ChalkError(
        Code.FailedPrecondition,
        `container ${JSON.stringify(record.name)} is ${record.status}${record.statusMessage ? ` (${record.statusMessage})` : ""}; exec needs a Running container`,
      );
    }
    const sandbox = await this.sandboxOf(record);
    return this.execSlots.run(() => this.execIn(sandbox, command, options));
  }

  private async execIn(
    sandbox: Sandbox,
    command: string[],
    options: { timeoutSecs?: number; stdin?: Uint8Array; env?: Record<string, string>; workdir?: string },
  ): Promise<ContainerExecResult> {
    const proc = await sandbox.spawn(command, {
      ...(options.timeoutSecs ? { timeoutSecs: options.timeoutSecs } : {}),
      ...(options.env && Object.keys(options.env).length > 0 ? { env: options.env } : {}),
      ...(options.workdir ? { workdir: options.workdir } : {}),
    });
    let overflow: "stdout" | "stderr" | undefined;
    const collect = async (stream: AsyncIterable<Uint8Array>, which: "stdout" | "stderr") => {
      const chunks: Uint8Array[] = [];
      let n = 0;
      for await (const chunk of stream) {
        n += chunk.byteLength;
        if (n > EXEC_OUTPUT_LIMIT) {
          if (!overflow) {
            overflow = which;
            await proc.signal("SIGKILL").catch(() => undefined);
          }
          continue;
        }
        chunks.push(chunk);
      }
      return Buffer.concat(chunks);
    };
    const feed = (async () => {
      if (options.stdin && options.stdin.byteLength > 0) await proc.stdin.write(options.stdin);
      await proc.stdin.end();
    })();
    const [stdout, stderr, exit] = await Promise.all([
      collect(proc.stdout, "stdout"),
      collect(proc.stderr, "stderr"),
      proc.wait(),
    ]);
    await feed.catch(() => undefined);
    if (overflow) {
      throw new ChalkError(
        Code.ResourceExhausted,
        `exec: ${overflow} exceeded ${formatBytes(EXEC_OUTPUT_LIMIT)} and the command was killed; stream large output with container.sandbox.spawn()`,
      );
    }
    this.deps.metrics.bytesStreamed.inc({ kind: "exec_stdout" }, stdout.byteLength);
    this.deps.metrics.bytesStreamed.inc({ kind: "exec_stderr" }, stderr.byteLength);
    return { stdout, stderr, exit };
  }

  // ---------------------------------------------------------------- logs

  /** The entrypoint's output; with `follow`, new output until the entrypoint ends. */
  async *logs(
    environment: string,
    ref: ContainerRef,
    follow: boolean,
    signal: AbortSignal,
  ): AsyncGenerator<Uint8Array> {
    const record = this.find(environment, ref);
    const done = () => {
      const r = this.deps.state.byIdAnyEnvironment(record.id);
      return !r || !ACTIVE_STATUSES.includes(r.status);
    };
    for await (const chunk of readInitLog(record.logPath, { follow, done, signal })) {
      this.deps.metrics.bytesStreamed.inc({ kind: "logs" }, chunk.byteLength);
      yield chunk;
    }
  }

  // ---------------------------------------------------------------- start-up

  /**
   * Reconciles the database with the runtime after a (re)start: running sandboxes are adopted and
   * watched again; containers whose sandbox vanished are marked Failed with the reason; runs that a
   * previous server left half-started are failed and their sandboxes removed; cleanups that did not
   * finish are retried. Never stops a running container.
   */
  async reconcile(): Promise<{ adopted: number; failed: number }> {
    const { state, runtime, log } = this.deps;
    let adopted = 0;
    let failed = 0;
    for (const record of state.active()) {
      let sandbox: Sandbox | undefined;
      let sandboxState: string | undefined;
      const sandboxId = record.sandboxId || (record.status === "Pending" ? record.id : "");
      if (sandboxId) {
        try {
          sandbox = await runtime.get(sandboxId);
          sandboxState = (await sandbox.info()).state;
        } catch (err) {
          if (ChalkError.from(err).code !== Code.NotFound) {
            log.warn({ container: record.id, error: ChalkError.from(err).message }, "cannot inspect sandbox");
            state.update(record.id, {
              status: "Unknown",
              statusMessage: `the runtime did not answer: ${ChalkError.from(err).rawMessage}`,
            });
            continue;
          }
        }
      }
      if (record.status === "Pending" || !sandbox || sandboxState !== "running") {
        const message =
          record.status === "Pending"
            ? "the server restarted while the container was starting"
            : !sandbox
              ? "the sandbox vanished: the runtime no longer knows it (found at server start)"
              : `the sandbox is ${sandboxState} (found at server start)`;
        if (sandbox) await sandbox.stop().catch(() => undefined);
        const done = state.finish(record.id, { status: "Failed", statusMessage: message });
        if (done) await this.cleanup(done);
        failed++;
        continue;
      }
      if (record.status === "Unknown") state.update(record.id, { status: "Running", statusMessage: "" });
      this.sandboxes.set(record.id, Promise.resolve(sandbox));
      this.watch(state.byIdAnyEnvironment(record.id) ?? record, sandbox);
      adopted++;
    }
    // Sandboxes of containers that are not active any more (a stop the server did not finish).
    for (const info of await runtime.list({}).catch(() => [])) {
      const owner = info.labels[CONTAINER_LABEL];
      if (!owner) continue;
      const r = state.byIdAnyEnvironment(owner);
      if (!r || !ACTIVE_STATUSES.includes(r.status)) {
        await (await runtime.get(info.id).catch(() => undefined))?.stop().catch(() => undefined);
      }
    }
    for (const r of state.uncleaned()) await this.cleanup(r);
    log.info({ adopted, failed }, "reconciled containers with the runtime");
    return { adopted, failed };
  }

  /**
   * Stops background work. Containers keep running. (Their logs need none: the runtime's log
   * writer keeps each under its bound.)
   */
  close(): void {}
}
