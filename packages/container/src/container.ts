import { ChalkError, Code, invalidArgument } from "@chalk/core";
import { type ContainerInfo as ContainerInfoMessage, ContainerService } from "@chalk/proto/container/v1";
import { type Client, createClient, defaultTransport, type Transport } from "@chalk/rpc";
import { connectSandboxes, type Sandbox, signalName, splitExecArgs } from "@chalk/sandbox";
import { Secret } from "@chalk/secrets";
import {
  CONTAINER_LIMITS,
  checkCommand,
  checkContainerId,
  checkContainerName,
  checkEnv,
  checkPort,
  checkReadiness,
  checkResources,
  checkSeconds,
  checkTailLines,
  checkVolumes,
} from "@chalk/spec";
import { ContainerFs } from "./container-fs.js";
import type {
  ContainerConnectOptions,
  ContainerCreateOptions,
  ContainerExecOptions,
  ContainerExecResult,
  ContainerInfo,
  ContainerLogsOptions,
  ContainerRunOptions,
  ContainerStopOptions,
} from "./container-options.js";
import { infoOf, runContainer, runError } from "./container-run.js";
import { checkImage } from "./image-source.js";
import { LazySandbox } from "./lazy-sandbox.js";
import { PortForward, type PortForwardOptions } from "./port-forward.js";

const decoder = new TextDecoder();

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
  #fs: ContainerFs | undefined;
  /** The last record the server sent. */
  #wire: ContainerInfoMessage | undefined;
  /** Settles once a `run()` in progress has the container accepted (or failed before). */
  #accepted: Promise<void> | undefined;

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
    checkReadiness(options.readiness, options.port);
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
    this.#wire = record;
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
   * The files API of the running container: `readFile`, `readStream`, `writeFile`, `list`,
   * `stat`, `mkdir` (`-p` by default), `remove`, `rename`, `watch`. Container paths, the
   * container's own permissions; see {@link ContainerFs}.
   *
   * @example
   * ```ts
   * await c.fs.writeFile("/app/config.json", JSON.stringify(config));
   * const text = await c.fs.readFile("/app/out.log", { encoding: "utf8" });
   * ```
   */
  get fs(): ContainerFs {
    this.#fs ??= new ContainerFs(this.#transport, () => this.id);
    return this.#fs;
  }

  /**
   * Runs the container: the server accepts it first (its name reserved, Pending, so `stop()` from
   * any handle or process finds it), then local files (`addLocalFile`/`addLocalDir`) go to its
   * temporary volume, then the image is built (skipped when cached), the container created, and its
   * readiness awaited. Resolves to this container once it is Running (or has already Succeeded).
   *
   * Rejects, with `details.phase` naming the phase that failed (`upload`, `build`, `create`,
   * `readiness`): already_exists for a taken name (the existing container is left alone);
   * aborted when a stop ended the run (nothing it started keeps running, its upload volume and
   * local secrets are removed); deadline_exceeded when `readyTimeoutSecs` or the readiness timeout
   * passed; failed_precondition carrying the server's message when a phase failed or the
   * entrypoint ended badly.
   */
  async run(options: ContainerRunOptions = {}): Promise<this> {
    const o = this.#options;
    if (!o || this.#id || this.#accepted !== undefined) {
      throw new ChalkError(
        Code.FailedPrecondition,
        `container ${JSON.stringify(this.#name)} was already run; use Container.fromName to attach to it`,
      );
    }
    const readyTimeoutSecs = checkSeconds(
      options.readyTimeoutSecs,
      "readyTimeoutSecs",
      CONTAINER_LIMITS.readyTimeoutSecs,
    );
    let accepted!: () => void;
    this.#accepted = new Promise<void>((resolve) => {
      accepted = resolve;
    });
    try {
      const record = await runContainer(
        {
          client: this.#client,
          transport: this.#transport,
          name: this.#name,
          options: o,
          onAccepted: (r) => {
            this.#adopt(r);
            accepted();
          },
        },
        options,
        readyTimeoutSecs,
      );
      this.#adopt(record);
    } finally {
      accepted();
    }
    if (this.info.status !== "Running" && this.info.status !== "Succeeded") {
      throw runError(this.#name, this.#wire as ContainerInfoMessage);
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
      timedOut: false,
      oomKilled: res.oomKilled,
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
    // A stop during this handle's own run() waits until the server has accepted the container.
    await this.#accepted;
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

  /** The entrypoint's output (stdout and stderr as written), in full or its last `tailLines` lines. */
  logs(options?: ContainerLogsOptions & { follow?: false }): Promise<string>;
  /** The entrypoint's output as it is written, until the entrypoint ends. */
  logs(options: ContainerLogsOptions & { follow: true }): AsyncIterable<string>;
  logs(options: ContainerLogsOptions = {}): Promise<string> | AsyncIterable<string> {
    let tailLines: number;
    try {
      tailLines = checkTailLines(options.tailLines);
    } catch (err) {
      // Bad input rejects, as from every other async method; it does not throw at the call.
      if (!options.follow) return Promise.reject(err);
      return {
        [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(err) }),
      };
    }
    const stream = this.#client.containerLogs(
      { ref: { case: "id", value: this.id }, follow: options.follow ?? false, tailLines },
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

  /**
   * Forwards a local port to `port` inside the running container, as `kubectl port-forward`: every
   * connection to the returned listener (on 127.0.0.1, a free port unless `localPort` says) is
   * tunnelled through the server over this container's connection (its token, TLS when it uses
   * TLS), so it works from a machine that cannot reach the container's address. The server
   * connects only to the container's own address. `await fwd.close()` stops it.
   *
   * Rejects with invalid_argument for a bad port. Each connection then fails on its own (the local
   * socket is reset; `onError` says why): failed_precondition when the container is not Running or
   * has no network (it was made without `port`), unavailable when nothing listens on the port,
   * unimplemented on a backend without port forwarding.
   *
   * @example
   * ```ts
   * await using fwd = await c.forward(8080);
   * const res = await fetch(`http://${fwd.address}/`);
   * ```
   */
  async forward(port: number, options: PortForwardOptions = {}): Promise<PortForward> {
    await this.refresh();
    if (this.info.status !== "Running") {
      throw new ChalkError(
        Code.FailedPrecondition,
        `container ${JSON.stringify(this.name)} is ${this.info.status}; port forwarding needs a Running container`,
      );
    }
    return PortForward.open(this.#client, this.id, port, options);
  }

  /** Stops the container (`await using c = await new Container(...).run()`). */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#id) await this.stop();
  }
}
