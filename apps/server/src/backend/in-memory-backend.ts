import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code, notFound } from "@chalk/core";
import {
  execBuffered,
  type Process,
  type ProcessExit,
  type Sandbox,
  type SandboxRuntime,
} from "@chalk/sandbox";
import type { ImageSource } from "@chalk/spec";
import type {
  BackendCapability,
  BackendCapacity,
  BackendContainer,
  BackendImage,
  BackendImages,
  BackendSecrets,
  BackendVolumes,
  BuildLogLine,
  ComputeBackend,
  ContainerEnd,
  ContainerLaunch,
  ContainerLogs,
} from "./compute-backend.js";
import { SqliteContainerRecords } from "./sqlite-container-records.js";
import { unimplemented } from "./unimplemented.js";

/** A promise the test resolves when it wants the code waiting on it to go on. */
export class Gate {
  readonly promise: Promise<void>;
  open!: () => void;
  constructor() {
    this.promise = new Promise((resolve) => {
      this.open = resolve;
    });
  }
}

/** Waits for `p` unless `signal` aborts first (as the image builder's shared builds do). */
function abortable(p: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new ChalkError(Code.Canceled, "stopped waiting"));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** What a command of a {@link FakeContainer} does: its output and exit. */
export interface FakeCommandResult {
  stdout?: string;
  stderr?: string;
  exit?: Partial<ProcessExit>;
}

/** A container of the {@link InMemoryBackend}: it runs until the test ends it or it is stopped. */
export class FakeContainer implements BackendContainer {
  readonly sandboxId: string;
  readonly sandbox: Sandbox;
  running = true;
  /** Grace periods of the stops it received. */
  readonly stops: number[] = [];
  /** Ports that accept connections. */
  readonly openPorts = new Set<number>();
  #end!: (e: ContainerEnd) => void;
  readonly #ended: Promise<ContainerEnd>;

  constructor(
    readonly id: string,
    readonly launch: ContainerLaunch,
    private readonly backend: InMemoryBackend,
  ) {
    this.sandboxId = `fake-${id}`;
    this.#ended = new Promise((resolve) => {
      this.#end = resolve;
    });
    const self = this;
    this.sandbox = {
      id: this.sandboxId,
      async info() {
        throw unimplemented("sandbox info", "in-memory", []);
      },
      async spawn(argv) {
        if (!self.running) throw new ChalkError(Code.FailedPrecondition, "the container is not running");
        const r = backend.commands(argv, self);
        const exit: ProcessExit = { exitCode: 0, signal: null, timedOut: false, oomKilled: false, ...r.exit };
        const proc: Process = {
          pid: 1,
          stdout: Readable.from(r.stdout ? [Buffer.from(r.stdout)] : []),
          stderr: Readable.from(r.stderr ? [Buffer.from(r.stderr)] : []),
          stdin: {
            async write() {
              throw new ChalkError(Code.FailedPrecondition, "stdin is closed");
            },
            async end() {},
          },
          async signal() {},
          async resize() {},
          wait: async () => exit,
        };
        return proc;
      },
      exec: (...args) => execBuffered(self.sandbox, args),
      async signal() {},
      wait: async () => {
        const e = await self.#ended;
        return e.kind === "exited"
          ? e.exit
          : { exitCode: null, signal: "SIGKILL", timedOut: false, oomKilled: false };
      },
      stop: (o) => self.stop(o?.gracePeriodSeconds ?? 0),
      [Symbol.asyncDispose]: () => self.stop(0),
    };
  }

  get address(): string | undefined {
    return this.launch.port ? `10.0.0.1:${this.launch.port}` : undefined;
  }

  /** Ends the main process, as the test says. */
  exit(exit: Partial<ProcessExit> = {}): void {
    this.running = false;
    this.#end({
      kind: "exited",
      exit: { exitCode: 0, signal: null, timedOut: false, oomKilled: false, ...exit },
    });
  }

  ended(): Promise<ContainerEnd> {
    return this.#ended;
  }

  async probePort(port: number): Promise<boolean> {
    return this.running && this.openPorts.has(port);
  }

  async stop(gracePeriodSeconds: number): Promise<void> {
    this.stops.push(gracePeriodSeconds);
    if (this.running) this.exit({ exitCode: null, signal: "SIGKILL" });
    this.backend.containers.delete(this.id);
  }
}

/**
 * A test double of {@link ComputeBackend}, for fast unit tests of the container service's logic:
 * containers, logs, secrets and volumes live in memory, records in a private in-memory SQLite (the
 * real store). Each phase can be held at a {@link Gate} the test opens, to stop a run in any phase.
 * The real backends are tested by the integration tests on runsc (and a cluster).
 */
export class InMemoryBackend implements ComputeBackend {
  readonly name = "in-memory";
  readonly capabilities = new Set<BackendCapability>();
  readonly records = SqliteContainerRecords.open(":memory:");
  /** Containers the backend runs, by id. */
  readonly containers = new Map<string, FakeContainer>();
  /** Every container ever created, by id. */
  readonly created = new Map<string, FakeContainer>();
  /** Held builds: the image's key → the gate every build of it waits on. */
  readonly buildGates = new Map<string, Gate>();
  /** When set, creations wait on it. */
  createGate: Gate | undefined;
  /** When set, builds fail with this error. */
  buildError: ChalkError | undefined;
  /** Builds started (a shared build counts once per waiter). */
  buildsStarted = 0;
  capacityValue: BackendCapacity = { memoryBytes: 64 * 2 ** 30, cpuMillis: 8000, gpus: [] };
  /** What commands run in containers print and how they exit. */
  commands: (argv: readonly string[], container: FakeContainer) => FakeCommandResult = () => ({});
  readonly secretValues = new Map<string, string>();
  readonly temporarySecrets = new Map<string, Map<string, string>>();
  readonly volumeNames = new Set<string>();
  readonly logText = new Map<string, string>();

  readonly secrets: BackendSecrets = {
    setTemporary: async (environment, owner, name, value) => {
      const key = `${environment}/${owner}`;
      const m = this.temporarySecrets.get(key) ?? new Map<string, string>();
      m.set(name, value);
      this.temporarySecrets.set(key, m);
    },
    check: async (environment, refs, owner) => {
      const missing = refs.filter((r) =>
        r.kind === "localEnv"
          ? !this.temporarySecrets.get(`${environment}/${owner}`)?.has(r.name)
          : !this.secretValues.has(`${environment}/${r.name}`),
      );
      if (missing.length > 0) {
        throw new ChalkError(
          Code.NotFound,
          `cannot resolve secrets: ${missing.map((m) => m.name).join(", ")} not found`,
        );
      }
    },
    deleteOwner: async (environment, owner) => {
      this.temporarySecrets.delete(`${environment}/${owner}`);
    },
  };

  readonly volumes: BackendVolumes = {
    require: async (environment, name) => {
      if (!this.volumeNames.has(`${environment}/${name}`)) throw notFound("volume", name);
    },
    create: async (environment, name) => {
      if (this.volumeNames.has(`${environment}/${name}`)) {
        throw new ChalkError(Code.AlreadyExists, `volume ${JSON.stringify(name)} already exists`);
      }
      this.volumeNames.add(`${environment}/${name}`);
    },
    delete: async (environment, name) => {
      this.volumeNames.delete(`${environment}/${name}`);
    },
  };

  readonly images: BackendImages = {
    check: () => undefined,
    resolve: async (source: ImageSource, _environment: string, onLog: (l: BuildLogLine) => void, signal) => {
      const key = source.kind === "uri" ? source.uri : Buffer.from(source.spec).toString("hex");
      this.buildsStarted++;
      onLog({ step: 0, steps: 1, text: `building ${key}\n` });
      const gate = this.buildGates.get(key);
      if (gate) await abortable(gate.promise, signal);
      if (this.buildError) throw this.buildError;
      const image: BackendImage = {
        imageUri: `memory/${key}`,
        digest: "",
        locator: key,
        env: { FROM_IMAGE: "1" },
        workdir: undefined,
        entrypoint: [],
        cached: !gate,
      };
      return image;
    },
  };

  readonly logs: ContainerLogs = {
    read: (id, options) => {
      const text = () => this.logText.get(id) ?? "";
      return (async function* () {
        let sent = 0;
        if (options.tailLines) {
          const lines = text().split(/(?<=\n)/);
          sent = text().length - lines.slice(-options.tailLines).join("").length;
        }
        for (;;) {
          const finished = options.done();
          const t = text();
          if (t.length > sent) {
            yield Buffer.from(t.slice(sent));
            sent = t.length;
            continue;
          }
          if (!options.follow || finished || options.signal.aborted) return;
          await sleep(5, undefined, { signal: options.signal }).catch(() => undefined);
        }
      })();
    },
  };

  readonly sandboxes: SandboxRuntime = {
    create: async () => {
      throw unimplemented("sandboxes", "in-memory", ["local"]);
    },
    get: async (id) => {
      throw notFound("sandbox", id);
    },
    list: async () => [],
  };

  /** Holds every build of `image` (a reference) until the returned gate opens. */
  holdBuild(image: string): Gate {
    const gate = new Gate();
    this.buildGates.set(image, gate);
    return gate;
  }

  /** Appends to a container's log, as its main process would. */
  writeLog(id: string, text: string): void {
    this.logText.set(id, (this.logText.get(id) ?? "") + text);
  }

  async createContainer(launch: ContainerLaunch): Promise<BackendContainer> {
    // Like a real runtime, a creation in progress is not interrupted: the service stops what it made.
    if (this.createGate) await this.createGate.promise;
    const c = new FakeContainer(launch.id, launch, this);
    this.containers.set(launch.id, c);
    this.created.set(launch.id, c);
    return c;
  }

  async adoptContainer(id: string): Promise<BackendContainer> {
    const c = this.containers.get(id);
    if (!c) throw notFound("container", id);
    return c;
  }

  async listContainers(): Promise<string[]> {
    return [...this.containers.keys()];
  }

  async capacity(): Promise<BackendCapacity> {
    return this.capacityValue;
  }

  mountServices(): void {}

  async close(): Promise<void> {
    this.records.close();
  }
}
