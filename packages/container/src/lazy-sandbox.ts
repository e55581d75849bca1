import type {
  ExecOptions,
  ExecResult,
  Process,
  ProcessExit,
  Sandbox,
  SandboxInfo,
  SandboxStopOptions,
  SignalLike,
  SpawnOptions,
} from "@chalk/sandbox";

/**
 * A {@link Sandbox} whose connection is made on first use, so `container.sandbox` can be a plain
 * property while attaching to the remote sandbox needs a call.
 */
export class LazySandbox implements Sandbox {
  #sandbox: Promise<Sandbox> | undefined;

  constructor(
    readonly id: string,
    private readonly connect: () => Promise<Sandbox>,
  ) {}

  #get(): Promise<Sandbox> {
    if (!this.#sandbox) {
      this.#sandbox = this.connect();
      this.#sandbox.catch(() => {
        this.#sandbox = undefined;
      });
    }
    return this.#sandbox;
  }

  async info(): Promise<SandboxInfo> {
    return (await this.#get()).info();
  }

  async spawn(argv: readonly string[], options?: SpawnOptions): Promise<Process> {
    return (await this.#get()).spawn(argv, options);
  }

  async exec(...args: [...argv: string[], options: ExecOptions] | string[]): Promise<ExecResult> {
    return (await this.#get()).exec(...args);
  }

  async signal(signal: SignalLike): Promise<void> {
    return (await this.#get()).signal(signal);
  }

  async wait(): Promise<ProcessExit> {
    return (await this.#get()).wait();
  }

  async stop(options?: SandboxStopOptions): Promise<void> {
    return (await this.#get()).stop(options);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
