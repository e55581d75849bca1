import { Readable } from "node:stream";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import { type ExecRequestSchema, type ExecResponse, SandboxService, Stream } from "@chalk/proto/sandbox/v1";
import {
  type Client,
  createClient,
  defaultTransport,
  type Transport,
  type TransportCreateOptions,
} from "@chalk/rpc";
import { Channel } from "../channel.js";
import { execBuffered } from "../exec.js";
import { validateArgv } from "../exec-args.js";
import { checkExecLimits } from "../exec-limits.js";
import { sendableSignal } from "../signals.js";
import type {
  ExecOptions,
  ExecResult,
  Process,
  ProcessExit,
  ProcessStdin,
  Sandbox,
  SandboxCreateOptions,
  SandboxInfo,
  SandboxRuntime,
  SandboxStopOptions,
  SignalLike,
  SpawnOptions,
} from "../types.js";
import { exitFromWire, infoFromWire, specToWire } from "../wire.js";

type ExecRequestInit = MessageInitShape<typeof ExecRequestSchema>;

/** Bytes of stdin per exec message: far below the 8 MiB message limit, large enough to be cheap. */
const STDIN_CHUNK_BYTES = 1024 * 1024;
type SandboxClient = Client<typeof SandboxService>;

/** Options for {@link connectSandboxes}: a transport to share, or what to open one with. */
export type SandboxConnectOptions = TransportCreateOptions & {
  /** An open transport to reuse (its address, token and environment apply). */
  transport?: Transport;
};

/**
 * Connects to the sandbox service of a Chalk server. The result has the same interface as the
 * in-process `LocalRuntime`, so code written against {@link SandboxRuntime} runs either way; a
 * server's sandboxes start from an image reference (`image`), which it resolves in its own store,
 * and it takes no host path (`rootfs`, `mounts`, `logPath`) from a client.
 * Address, token and environment default to `CHALK_API_SERVER`, `CHALK_TOKEN`, `CHALK_ENVIRONMENT`.
 *
 * @example
 * ```ts
 * const runtime = connectSandboxes({ address: "127.0.0.1:50051" });
 * const sandbox = await runtime.create({ image: "python:3.12-slim" });
 * const { stdoutText } = await sandbox.exec("echo", "hi");
 * await sandbox.stop();
 * ```
 */
export function connectSandboxes(options: SandboxConnectOptions = {}): SandboxRuntime {
  const transport = options.transport ?? defaultTransport(options);
  return new RemoteRuntime(createClient(SandboxService, transport));
}

class RemoteRuntime implements SandboxRuntime {
  constructor(readonly client: SandboxClient) {}

  async create(options: SandboxCreateOptions): Promise<Sandbox> {
    if (!options || typeof options.image !== "string" || options.image === "") {
      throw invalidArgument("image", "required", "an image reference, as a Container takes it");
    }
    if (options.command) validateArgv(options.command, "command");
    checkExecLimits(options.command ?? [], options.env ?? {}, "command", "env");
    const res = await this.client.createSandbox({ spec: specToWire(options) });
    return new RemoteSandbox(this.client, res.sandbox?.id ?? "");
  }

  async get(id: string): Promise<Sandbox> {
    const res = await this.client.getSandbox({ id });
    return new RemoteSandbox(this.client, res.sandbox?.id ?? id);
  }

  async list(options: { labels?: Record<string, string> } = {}): Promise<SandboxInfo[]> {
    const res = await this.client.listSandboxes({ labels: options.labels ?? {} });
    return res.sandboxes.map(infoFromWire);
  }
}

class RemoteSandbox implements Sandbox {
  constructor(
    readonly client: SandboxClient,
    readonly id: string,
  ) {}

  async info(): Promise<SandboxInfo> {
    const res = await this.client.getSandbox({ id: this.id });
    if (!res.sandbox) throw new ChalkError(Code.Internal, "server sent no sandbox");
    return infoFromWire(res.sandbox);
  }

  spawn(argv: readonly string[], options: SpawnOptions = {}): Promise<Process> {
    validateArgv(argv);
    // The server checks again with the sandbox's own environment merged in.
    checkExecLimits(argv, options.env ?? {});
    return RemoteProcess.start(this.client, this.id, argv, options);
  }

  exec(...args: [...argv: string[], options: ExecOptions] | string[]): Promise<ExecResult> {
    return execBuffered(this, args);
  }

  async signal(signal: SignalLike): Promise<void> {
    await this.client.signalSandbox({ id: this.id, signal: sendableSignal(signal) });
  }

  async wait(): Promise<ProcessExit> {
    const res = await this.client.waitSandbox({ id: this.id });
    return exitFromWire(res.exit);
  }

  async stop(options: SandboxStopOptions = {}): Promise<void> {
    await this.client.stopSandbox({ id: this.id, gracePeriodSeconds: options.gracePeriodSeconds ?? 0 });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** A readable whose `push` can be awaited until the consumer asks for more. */
class PullReadable extends Readable {
  #wanted: (() => void) | undefined;

  override _read(): void {
    const w = this.#wanted;
    this.#wanted = undefined;
    w?.();
  }

  /** Pushes a chunk; resolves at once when the buffer has room, else when the reader reads. */
  async feed(chunk: Uint8Array): Promise<void> {
    if (this.destroyed) return;
    if (this.push(chunk)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.off("close", done);
        resolve();
      };
      this.#wanted = done;
      this.once("close", done);
    });
  }
}

class RemoteProcess implements Process {
  readonly stdout = new PullReadable({ highWaterMark: 64 * 1024 });
  readonly stderr = new PullReadable({ highWaterMark: 64 * 1024 });
  readonly stdin: ProcessStdin;
  #exit: Promise<ProcessExit>;

  private constructor(
    readonly pid: number,
    readonly hasPty: boolean,
    private readonly requests: Channel<ExecRequestInit>,
    responses: AsyncIterator<ExecResponse>,
  ) {
    let stdinClosed = false;
    this.stdin = {
      write: async (data) => {
        if (stdinClosed) throw new ChalkError(Code.FailedPrecondition, "stdin is closed");
        const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
        // One message per STDIN_CHUNK_BYTES: a large write must not exceed the message size limit.
        for (let at = 0; at < bytes.byteLength || at === 0; at += STDIN_CHUNK_BYTES) {
          const value = bytes.subarray(at, at + STDIN_CHUNK_BYTES);
          await this.requests.send({ message: { case: "stdin", value } });
          if (bytes.byteLength === 0) break;
        }
      },
      end: async () => {
        if (stdinClosed) return;
        stdinClosed = true;
        await this.requests.send({ message: { case: "stdinEof", value: {} } });
      },
    };
    this.#exit = this.#demux(responses);
    // wait() may never be called; a failed stream must not become an unhandled rejection.
    this.#exit.catch(() => undefined);
  }

  static async start(client: SandboxClient, sandboxId: string, argv: readonly string[], o: SpawnOptions) {
    if (o.timeoutSecs !== undefined && !(o.timeoutSecs > 0)) {
      throw invalidArgument("timeoutSecs", `${o.timeoutSecs} is not a positive number of seconds`);
    }
    const requests = new Channel<ExecRequestInit>();
    void requests.send({
      message: {
        case: "start",
        value: {
          sandboxId,
          argv: [...argv],
          env: o.env ?? {},
          workdir: o.workdir ?? "",
          timeoutSecs: o.timeoutSecs ?? 0,
          pty: o.pty,
        },
      },
    });
    // `o.signal` cancels the call only until the process started (SpawnOptions.signal).
    o.signal?.throwIfAborted();
    const call = new AbortController();
    const cancel = () => call.abort(o.signal?.reason);
    o.signal?.addEventListener("abort", cancel, { once: true });
    const responses = client.exec(requests, { signal: call.signal })[Symbol.asyncIterator]();
    let first: IteratorResult<ExecResponse>;
    try {
      first = await responses.next();
    } catch (err) {
      requests.close();
      throw err;
    } finally {
      o.signal?.removeEventListener("abort", cancel);
    }
    const event = first.done ? undefined : first.value.event;
    if (event?.case !== "started") {
      requests.close();
      await responses.return?.();
      if (event?.case === "error") throw new ChalkError(event.value.code as Code, event.value.message);
      throw new ChalkError(Code.Internal, "exec stream ended before the process started");
    }
    return new RemoteProcess(event.value.pid, o.pty !== undefined, requests, responses);
  }

  async #demux(responses: AsyncIterator<ExecResponse>): Promise<ProcessExit> {
    try {
      for (;;) {
        const next = await responses.next();
        if (next.done) throw new ChalkError(Code.Unavailable, "exec stream ended before the process exited");
        const e = next.value.event;
        if (e.case === "output") {
          await (e.value.stream === Stream.STDERR ? this.stderr : this.stdout).feed(e.value.data);
        } else if (e.case === "exited") {
          return exitFromWire(e.value);
        } else if (e.case === "error") {
          throw new ChalkError(e.value.code as Code, e.value.message);
        }
      }
    } catch (err) {
      const error = ChalkError.from(err);
      this.stdout.destroy(error);
      this.stderr.destroy(error);
      throw error;
    } finally {
      this.stdout.push(null);
      this.stderr.push(null);
      this.requests.close();
      await responses.return?.();
    }
  }

  async signal(signal: SignalLike): Promise<void> {
    await this.requests.send({ message: { case: "signal", value: sendableSignal(signal) } });
  }

  async resize(cols: number, rows: number): Promise<void> {
    if (!this.hasPty) throw new ChalkError(Code.FailedPrecondition, "resize: the process has no PTY");
    for (const [field, v] of [
      ["cols", cols],
      ["rows", rows],
    ] as const) {
      if (!Number.isInteger(v) || v < 1 || v > 65535) throw invalidArgument(field, `${v} is not 1 to 65535`);
    }
    await this.requests.send({ message: { case: "resize", value: { cols, rows } } });
  }

  wait(): Promise<ProcessExit> {
    return this.#exit;
  }
}
