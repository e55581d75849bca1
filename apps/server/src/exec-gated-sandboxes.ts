import type {
  ExecOptions,
  ExecResult,
  Process,
  Sandbox,
  SandboxCreateOptions,
  SandboxRuntime,
  SpawnOptions,
} from "@chalk/sandbox";
import type { ExecSlots } from "./exec-slots.js";

/** The label that records a sandbox's environment (the sandbox service's). */
const ENVIRONMENT_LABEL = "chalk.environment";

/**
 * The sandbox runtime the sandbox service serves, with every process it starts
 * (SandboxService.Exec, and so `c.sandbox.spawn` and `Sandbox.exec` of clients) holding one of the
 * server's exec slots from its start to its end: the same `--max-concurrent-execs` and per-container
 * and per-environment bounds as ContainerService.ExecContainer. A process on a terminal or without
 * a timeout is long-lived. A process waits for its slot before it starts; one whose `signal` aborts
 * while it waits leaves the queue and never starts.
 */
export function execGatedSandboxes(runtime: SandboxRuntime, slots: ExecSlots): SandboxRuntime {
  // A sandbox's environment never changes: read once per sandbox id.
  const environments = new Map<string, Promise<string>>();
  const environmentOf = (sandbox: Sandbox): Promise<string> => {
    let e = environments.get(sandbox.id);
    if (!e) {
      e = sandbox.info().then((i) => i.labels[ENVIRONMENT_LABEL] ?? "");
      e.catch(() => environments.delete(sandbox.id));
      environments.set(sandbox.id, e);
    }
    return e;
  };
  const gate = (sandbox: Sandbox): Sandbox => new GatedSandbox(sandbox, slots, () => environmentOf(sandbox));
  return {
    async create(options: SandboxCreateOptions) {
      const sandbox = await runtime.create(options);
      environments.set(sandbox.id, Promise.resolve(options.labels?.[ENVIRONMENT_LABEL] ?? ""));
      return gate(sandbox);
    },
    async get(id: string) {
      return gate(await runtime.get(id));
    },
    list: (options) => runtime.list(options),
  };
}

class GatedSandbox implements Sandbox {
  constructor(
    private readonly inner: Sandbox,
    private readonly slots: ExecSlots,
    private readonly environment: () => Promise<string>,
  ) {}

  get id(): string {
    return this.inner.id;
  }

  info() {
    return this.inner.info();
  }

  async spawn(argv: readonly string[], options: SpawnOptions = {}): Promise<Process> {
    const release = await this.slots.acquire(
      {
        container: this.inner.id,
        environment: await this.environment(),
        longLived: options.pty !== undefined || !options.timeoutSecs,
      },
      options.signal,
    );
    try {
      // Cancelled as the slot came: nothing starts.
      options.signal?.throwIfAborted();
      const proc = await this.inner.spawn(argv, options);
      proc.wait().then(release, release);
      return proc;
    } catch (err) {
      release();
      throw err;
    }
  }

  async exec(...args: [...argv: string[], options: ExecOptions] | string[]): Promise<ExecResult> {
    const last = args.at(-1);
    const options = typeof last === "object" ? (last as ExecOptions) : {};
    const release = await this.slots.acquire(
      {
        container: this.inner.id,
        environment: await this.environment(),
        longLived: !options.timeoutSecs,
        stdinBytes:
          typeof options.stdin === "string"
            ? Buffer.byteLength(options.stdin)
            : (options.stdin?.byteLength ?? 0),
      },
      options.signal,
    );
    try {
      options.signal?.throwIfAborted();
      return await this.inner.exec(...args);
    } finally {
      release();
    }
  }

  signal(signal: Parameters<Sandbox["signal"]>[0]) {
    return this.inner.signal(signal);
  }

  wait() {
    return this.inner.wait();
  }

  stop(options?: Parameters<Sandbox["stop"]>[0]) {
    return this.inner.stop(options);
  }

  [Symbol.asyncDispose]() {
    return this.inner[Symbol.asyncDispose]();
  }
}
