import { setTimeout as sleep } from "node:timers/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import {
  type ContainerInfo as ContainerInfoMessage,
  ContainerService,
  type ContainerSpecSchema,
} from "@chalk/proto/container/v1";
import {
  type Client,
  createClient,
  defaultTransport,
  type Transport,
  type TransportCreateOptions,
} from "@chalk/rpc";
import { connectSandboxes, type Sandbox, signalName, splitExecArgs } from "@chalk/sandbox";
import { Secret, secretToProto } from "@chalk/secrets";
import {
  CONTAINER_LIMITS,
  type ContainerStatus,
  checkCommand,
  checkContainerId,
  checkContainerName,
  checkEnv,
  checkPort,
  checkResources,
  checkSeconds,
  checkVolumes,
  statusFromWire,
  type VolumeTuple,
} from "@chalk/spec";
import { Volume } from "@chalk/volume";
import { type ContainerImage, checkImage, imageSourceOf, uploadsOf } from "./image-source.js";
import { LazySandbox } from "./lazy-sandbox.js";
import { planUploads } from "./upload-plan.js";

/** What the server knows about a container: {@link Container.info}. */
export interface ContainerInfo {
  /** Lifecycle status. */
  status: ContainerStatus;
  /** Why the status is what it is (`"the entrypoint exited with code 3"`); empty while it runs. */
  statusMessage: string;
  /** When the container was created. */
  createdAt: Date;
  /** When it stopped, failed or succeeded; undefined while it runs. */
  stoppedAt: Date | undefined;
  /** `host:port` on which the host reaches the container's `port`; undefined without a port. */
  address: string | undefined;
  /** Exit code of the entrypoint, once it ended. */
  exitCode: number | undefined;
  /** The sandbox the container runs in. */
  sandboxId: string;
  /** Resources in force: CPU in millicores, memory in bytes. */
  resources: { cpuMillis: number; memoryBytes: number; gpu: string | undefined };
}

/** Where the server is and who is calling. Each field falls back to an environment variable. */
export interface ContainerConnectOptions extends TransportCreateOptions {
  /**
   * An open transport to use. Default: one shared by every SDK object with the same address, token
   * and environment (`CHALK_API_SERVER`, `CHALK_TOKEN`, `CHALK_ENVIRONMENT`).
   */
  transport?: Transport;
}

/** Options for `new Container(...)`: what to run, following the seed's Container. */
export interface ContainerCreateOptions extends ContainerConnectOptions {
  /** The image: an `Image` spec (built when not cached) or an image reference string. */
  image: ContainerImage;
  /** Name, unique among the environment's active containers: 1-63 of a-z, 0-9 and "-". */
  name: string;
  /** CPU cores (Kubernetes quantity): `"4"`, `"0.5"`, `"500m"`. Default: the environment's. */
  cpu?: string;
  /** Memory (Kubernetes quantity): `"512Mi"`, `"16Gi"`. Default: the environment's. */
  memory?: string;
  /** GPU: `"nvidia-l4:1"`, `"nvidia-l4"` or `"2"`. Default: none. */
  gpu?: string;
  /** Plaintext environment variables. */
  env?: Record<string, string>;
  /** Secrets injected as environment variables (`Secret.fromEnv`, `fromIntegration`, `fromLocalEnv`). */
  secrets?: readonly Secret[];
  /** Named volumes to mount: `[["training-data", "/data"]]`. */
  volumes?: readonly VolumeTuple[];
  /** A port inside the container for the host to reach at `info.address` (1-65535). */
  port?: number;
  /** The main process; its exit ends the container. Default: the image's, else an idle process. */
  entrypoint?: readonly string[];
}

/** One piece of an image build's log, for {@link ContainerRunOptions.onBuildLog}. */
export interface ContainerBuildLog {
  /** 0-based build step. */
  step: number;
  /** Number of steps. */
  steps: number;
  /** Output of the step. */
  text: string;
}

/** Options for {@link Container.run}. */
export interface ContainerRunOptions {
  /** Seconds to wait for the container to be Running (after the image is built). Default 300. */
  readyTimeoutSecs?: number;
  /** Receives the image build's output as it happens (nothing when the image is cached). */
  onBuildLog?: (log: ContainerBuildLog) => void;
}

/** Options for {@link Container.exec}; an options object may close the argument list. */
export interface ContainerExecOptions {
  /** Seconds after which the command is killed and exec throws deadline_exceeded. Default: none. */
  timeoutSecs?: number;
  /** Bytes (or UTF-8 text) written to the command's stdin before EOF. At most 4 MiB. */
  stdin?: Uint8Array | string;
  /** Extra environment variables for this command. */
  env?: Record<string, string>;
  /** Working directory (absolute). */
  workdir?: string;
}

/** The result of {@link Container.exec}. */
export interface ContainerExecResult {
  /** Everything the command wrote to stdout. */
  stdout: Uint8Array;
  /** Everything the command wrote to stderr. */
  stderr: Uint8Array;
  /** stdout as UTF-8 text. */
  stdoutText: string;
  /** stderr as UTF-8 text. */
  stderrText: string;
  /** Exit code; null when a signal ended the command (then `signal` names it). */
  exitCode: number | null;
  /** Name of the signal that ended the command, or null. */
  signal: string | null;
}

/** Options for {@link Container.stop}. */
export interface ContainerStopOptions {
  /** Seconds between SIGTERM and SIGKILL. Default 0: SIGKILL at once. At most 3600. */
  gracePeriodSeconds?: number;
}

/** Options for {@link Container.logs}. */
export interface ContainerLogsOptions {
  /** Stream new output until the entrypoint ends. */
  follow?: boolean;
  /** Stops following. */
  signal?: AbortSignal;
}

const decoder = new TextDecoder();

function infoOf(m: ContainerInfoMessage): ContainerInfo {
  return {
    status: statusFromWire(m.status) ?? "Unknown",
    statusMessage: m.statusMessage,
    createdAt: new Date(Number(m.createdAtMs)),
    stoppedAt: m.stoppedAtMs > 0n ? new Date(Number(m.stoppedAtMs)) : undefined,
    address: m.address || undefined,
    exitCode: m.exitCode,
    sandboxId: m.sandboxId,
    resources: {
      cpuMillis: m.resources?.cpuMillis ?? 0,
      memoryBytes: Number(m.resources?.memoryBytes ?? 0n),
      gpu: m.resources?.gpu || undefined,
    },
  };
}

function uploadVolumeName(): string {
  return `chalk-upload-${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;
}

type ContainerClient = Client<typeof ContainerService>;

/** Options objects of handles made by fromName/fromId, which skip the constructor's validation. */
const attaching = new WeakSet<object>();

/**
 * A container: an image run as a gVisor sandbox with resources, environment, secrets, volumes, an
 * optional port and entrypoint, reached through the Chalk server. `run()` builds the image (skipped
 * when cached), uploads local files, creates the container and waits until it runs; `exec()` runs a
 * command in it; `stop()` ends it and removes what the run owned.
 *
 * @example
 * ```ts
 * import { Container, Image } from "@chalk/container";
 *
 * const c = await new Container({
 *   image: Image.debianSlim("3.11").pipInstall(["requests"]),
 *   name: "hello-container",
 *   cpu: "1",
 *   memory: "2Gi",
 * }).run();
 * const result = await c.exec("python", "-c", "import requests; print(requests.__version__)");
 * console.log(result.stdoutText, result.exitCode);
 * await c.stop();
 * ```
 */
export class Container implements AsyncDisposable {
  readonly #client: ContainerClient;
  readonly #transport: Transport;
  readonly #options: ContainerCreateOptions | undefined;
  #id: string | undefined;
  #name: string;
  #imageUri = "";
  #info: ContainerInfo | undefined;
  #sandbox: LazySandbox | undefined;

  /**
   * Describes a container; nothing is sent until {@link Container.run}. Every option is validated
   * here: a bad value throws invalid_argument naming the field and the accepted forms.
   */
  constructor(options: ContainerCreateOptions) {
    if (!options || typeof options !== "object") throw invalidArgument("options", "required");
    this.#name = checkContainerName(options.name);
    if (attaching.delete(options)) {
      this.#options = undefined;
      this.#transport = options.transport ?? defaultTransport(options);
      this.#client = createClient(ContainerService, this.#transport);
      return;
    }
    checkImage(options.image);
    checkResources(options);
    checkEnv(options.env);
    if (options.secrets !== undefined) {
      if (!Array.isArray(options.secrets)) throw invalidArgument("secrets", "expected a list of Secret");
      if (options.secrets.length > CONTAINER_LIMITS.secrets) {
        throw invalidArgument(
          "secrets",
          `${options.secrets.length} secrets; at most ${CONTAINER_LIMITS.secrets}`,
        );
      }
      options.secrets.forEach((s, i) => {
        if (!(s instanceof Secret)) {
          throw invalidArgument(
            `secrets[${i}]`,
            "is not a Secret",
            "Secret.fromEnv(name), Secret.fromIntegration(name) or Secret.fromLocalEnv(name)",
          );
        }
      });
    }
    checkVolumes(options.volumes);
    checkPort(options.port);
    if (options.entrypoint !== undefined) checkCommand(options.entrypoint, "entrypoint");
    this.#options = options;
    this.#transport = options.transport ?? defaultTransport(options);
    this.#client = createClient(ContainerService, this.#transport);
  }

  /** A handle on an existing container, from its record. */
  static #attach(record: ContainerInfoMessage, transport: Transport): Container {
    const options = { image: "", name: record.name, transport };
    attaching.add(options);
    const handle = new Container(options);
    handle.#adopt(record);
    return handle;
  }

  #adopt(record: ContainerInfoMessage): void {
    this.#id = record.id;
    this.#name = record.name;
    this.#imageUri = record.imageUri;
    this.#info = infoOf(record);
  }

  /**
   * Attaches to the container of that name in the environment (the running one, else the newest),
   * for example from another process. not_found when there is none.
   */
  static async fromName(name: string, options: ContainerConnectOptions = {}): Promise<Container> {
    checkContainerName(name);
    const transport = options.transport ?? defaultTransport(options);
    const res = await createClient(ContainerService, transport).getContainer({
      ref: { case: "name", value: name },
    });
    if (!res.container) throw new ChalkError(Code.Internal, "the server sent no container");
    return Container.#attach(res.container, transport);
  }

  /** Attaches to a container by id. not_found when the environment has none with that id. */
  static async fromId(id: string, options: ContainerConnectOptions = {}): Promise<Container> {
    checkContainerId(id);
    const transport = options.transport ?? defaultTransport(options);
    const res = await createClient(ContainerService, transport).getContainer({
      ref: { case: "id", value: id },
    });
    if (!res.container) throw new ChalkError(Code.Internal, "the server sent no container");
    return Container.#attach(res.container, transport);
  }

  /** The container id (a UUID). Throws failed_precondition before `run()`. */
  get id(): string {
    if (!this.#id)
      throw new ChalkError(
        Code.FailedPrecondition,
        `container ${JSON.stringify(this.#name)} has not run yet`,
      );
    return this.#id;
  }

  /** The container name. */
  get name(): string {
    return this.#name;
  }

  /** Where the container's image lives (empty before `run()`). */
  get imageUri(): string {
    return this.#imageUri;
  }

  /** What the server said about the container at the last `run()`, `refresh()` or `stop()`. */
  get info(): ContainerInfo {
    if (!this.#info)
      throw new ChalkError(
        Code.FailedPrecondition,
        `container ${JSON.stringify(this.#name)} has not run yet`,
      );
    return this.#info;
  }

  /**
   * The `Sandbox` the container runs in, for streaming output, stdin and signals
   * (`await c.sandbox.spawn([...])`).
   */
  get sandbox(): Sandbox {
    if (!this.#sandbox) {
      const info = this.info;
      if (!info.sandboxId) {
        throw new ChalkError(
          Code.FailedPrecondition,
          `container ${JSON.stringify(this.#name)} has no sandbox (${info.status})`,
        );
      }
      const runtime = connectSandboxes({ transport: this.#transport });
      this.#sandbox = new LazySandbox(info.sandboxId, () => runtime.get(info.sandboxId));
    }
    return this.#sandbox;
  }

  /**
   * Builds the image (skipped when cached), uploads `addLocalFile`/`addLocalDir` files to a temporary
   * volume mounted at start, creates the container and waits until it is Running. Resolves to this
   * container. A taken name fails with already_exists and leaves the existing container alone; a
   * failed build or start throws failed_precondition carrying the server's status message.
   */
  async run(options: ContainerRunOptions = {}): Promise<this> {
    const o = this.#options;
    if (!o || this.#id) {
      throw new ChalkError(
        Code.FailedPrecondition,
        `container ${JSON.stringify(this.#name)} was already run; use Container.fromName to attach to it`,
      );
    }
    const readyTimeoutSecs = checkSeconds(options.readyTimeoutSecs, "readyTimeoutSecs", 24 * 3600) ?? 300;
    const source = await imageSourceOf(o.image);
    const uploads = uploadsOf(o.image);
    let uploadName: string | undefined;
    const spec: MessageInitShape<typeof ContainerSpecSchema> = {
      name: this.#name,
      image: { source },
      cpu: o.cpu ?? "",
      memory: o.memory ?? "",
      gpu: o.gpu ?? "",
      env: { ...(o.env ?? {}) },
      secrets: (o.secrets ?? []).map(secretToProto),
      volumes: checkVolumes(o.volumes).map(([name, mountPath]) => ({ name, mountPath, readOnly: false })),
      port: o.port ?? 0,
      entrypoint: [...(o.entrypoint ?? [])],
    };
    if (uploads.length > 0) {
      const plan = planUploads(uploads);
      uploadName = uploadVolumeName();
      const volume = new Volume(uploadName, { transport: this.#transport });
      await volume.batchUpload((b) => {
        for (const e of plan.entries) {
          if (e.kind === "file")
            b.putFileFromPath(e.volumePath, e.source, e.mode === undefined ? {} : { mode: e.mode });
          else b.putDir(e.source, e.volumePath, { skip: e.skip ?? [] });
        }
      });
      spec.upload = { volumeName: uploadName, targets: plan.targets };
    }
    let record: ContainerInfoMessage | undefined;
    try {
      for await (const res of this.#client.runContainer({ spec })) {
        if (res.event.case === "buildLog") options.onBuildLog?.({ ...res.event.value });
        else if (res.event.case === "container") record = res.event.value;
      }
    } catch (err) {
      // The server owns the upload volume only once it accepted the run; before that it is ours.
      if (uploadName)
        await new Volume(uploadName, { transport: this.#transport }).delete().catch(() => undefined);
      throw err;
    }
    if (!record) throw new ChalkError(Code.Internal, "the server ended the run without a container");
    this.#adopt(record);
    const deadline = Date.now() + readyTimeoutSecs * 1000;
    while (this.info.status === "Pending") {
      if (Date.now() > deadline) {
        throw new ChalkError(
          Code.DeadlineExceeded,
          `container ${JSON.stringify(this.#name)} was not Running after ${readyTimeoutSecs}s (${this.info.statusMessage || "pending"})`,
        );
      }
      await sleep(200);
      await this.refresh();
    }
    if (this.info.status !== "Running" && this.info.status !== "Succeeded") {
      throw new ChalkError(
        Code.FailedPrecondition,
        `container ${JSON.stringify(this.#name)} is ${this.info.status}: ${this.info.statusMessage || "no reason given"}`,
        { details: { id: this.#id, status: this.info.status, statusMessage: this.info.statusMessage } },
      );
    }
    return this;
  }

  /** Re-fetches the container's record from the server (`info`, `imageUri`). */
  async refresh(): Promise<this> {
    const res = await this.#client.getContainer({ ref: { case: "id", value: this.id } });
    if (!res.container) throw new ChalkError(Code.Internal, "the server sent no container");
    this.#adopt(res.container);
    return this;
  }

  /**
   * Runs a command in the running container and returns its output in full. An options object may
   * close the argument list: `exec("sleep", "9", { timeoutSecs: 5 })`. A timeout throws
   * deadline_exceeded with the partial output in `details.stdout` / `details.stderr`; output over
   * 3 MiB per stream throws resource_exhausted (use `c.sandbox.spawn` to stream it).
   */
  async exec(
    ...args: [...argv: string[], options: ContainerExecOptions] | string[]
  ): Promise<ContainerExecResult> {
    const { argv, options } = splitExecArgs(args) as { argv: string[]; options: ContainerExecOptions };
    checkCommand(argv, "command");
    const timeoutSecs = checkSeconds(options.timeoutSecs, "timeoutSecs", CONTAINER_LIMITS.execTimeoutSecs);
    const stdin = typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin;
    if (stdin && stdin.byteLength > CONTAINER_LIMITS.execStdinBytes) {
      throw invalidArgument("stdin", `${stdin.byteLength} bytes; at most ${CONTAINER_LIMITS.execStdinBytes}`);
    }
    const env = checkEnv(options.env);
    if (options.workdir !== undefined && !options.workdir.startsWith("/")) {
      throw invalidArgument("workdir", `${JSON.stringify(options.workdir)} is not absolute`);
    }
    const res = await this.#client.execContainer({
      ref: { case: "id", value: this.id },
      command: argv,
      timeoutSecs: timeoutSecs ?? 0,
      ...(stdin ? { stdin } : {}),
      env,
      workdir: options.workdir ?? "",
    });
    const result: ContainerExecResult = {
      stdout: res.stdout,
      stderr: res.stderr,
      stdoutText: decoder.decode(res.stdout),
      stderrText: decoder.decode(res.stderr),
      exitCode: res.exitCode ?? null,
      signal: res.signal ? signalName(res.signal) : null,
    };
    if (res.timedOut) {
      throw new ChalkError(
        Code.DeadlineExceeded,
        `command ${JSON.stringify(argv[0])} timed out after ${timeoutSecs}s and was killed`,
        { details: { stdout: result.stdoutText, stderr: result.stderrText } },
      );
    }
    return result;
  }

  /**
   * Stops the container: SIGTERM, up to `gracePeriodSeconds`, then SIGKILL. Also removes the
   * temporary volume of uploaded local files and every secret stored from the local environment for
   * this run; named volumes stay. Stopping a container that has ended is a no-op.
   */
  async stop(options: ContainerStopOptions = {}): Promise<void> {
    const grace = checkSeconds(
      options.gracePeriodSeconds,
      "gracePeriodSeconds",
      CONTAINER_LIMITS.gracePeriodSeconds,
    );
    const res = await this.#client.stopContainer({
      ref: { case: "id", value: this.id },
      gracePeriodSeconds: grace ?? 0,
    });
    if (res.container) this.#adopt(res.container);
  }

  /** The entrypoint's output (stdout and stderr as written), in full. */
  logs(options?: { follow?: false; signal?: AbortSignal }): Promise<string>;
  /** The entrypoint's output as it is written, until the entrypoint ends. */
  logs(options: { follow: true; signal?: AbortSignal }): AsyncIterable<string>;
  logs(options: ContainerLogsOptions = {}): Promise<string> | AsyncIterable<string> {
    const stream = this.#client.containerLogs(
      { ref: { case: "id", value: this.id }, follow: options.follow ?? false },
      options.signal ? { signal: options.signal } : {},
    );
    if (options.follow) {
      return (async function* () {
        const d = new TextDecoder();
        for await (const chunk of stream) yield d.decode(chunk.data, { stream: true });
        const tail = d.decode();
        if (tail) yield tail;
      })();
    }
    return (async () => {
      const chunks: Uint8Array[] = [];
      for await (const chunk of stream) chunks.push(chunk.data);
      return decoder.decode(Buffer.concat(chunks));
    })();
  }

  /** Stops the container (`await using c = await new Container(...).run()`). */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#id) await this.stop();
  }
}
