import { ChalkError, Code } from "@chalk/core";
import type { Process, Sandbox } from "@chalk/sandbox";

/** A header a client sends to the agent (see tooling/gvisor/cmd/chalk-fs-agent). */
export interface AgentRequest {
  id?: number;
  op: string;
  path?: string;
  to?: string;
  parents?: boolean;
  recursive?: boolean;
  mode?: number;
  window?: number;
}

/** A file's stat as the agent reports it. */
export interface AgentStat {
  name: string;
  type: "file" | "directory" | "symlink" | "other";
  size: number;
  mode: number;
  mtimeMs: number;
  target?: string;
}

/** An answer of the agent. */
export interface AgentAnswer {
  id: number;
  error?: { code: string; message: string };
  stat?: AgentStat;
  entries?: AgentStat[];
  chunk?: boolean;
  done?: boolean;
  event?: { type: "create" | "modify" | "delete"; path: string };
}

const MAX_HEADER = 64 * 1024;
const MAX_BODY = 1024 * 1024;
/** Chunks of a read in flight (the agent's are 256 KiB): at most 4 MiB buffered per read. */
const READ_WINDOW = 16;
/** Events a watcher may fall behind by before its watch ends with resource_exhausted. */
const WATCH_QUEUE = 1024;

const CODES: Record<string, Code> = {
  not_found: Code.NotFound,
  permission_denied: Code.PermissionDenied,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  invalid_argument: Code.InvalidArgument,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
};

/** The agent's error as a ChalkError with its code; its message names the path. */
function agentError(e: { code: string; message: string }): ChalkError {
  // The agent runs inside the container: an answer it should never give is the agent failing.
  return new ChalkError(CODES[String(e.code)] ?? Code.Unavailable, String(e.message).slice(0, 1000));
}

/** Encodes one frame: header length, body length (both u32 big-endian), header JSON, body. */
export function encodeFrame(header: AgentRequest, body?: Uint8Array): Buffer {
  const h = Buffer.from(JSON.stringify(header));
  const lens = Buffer.alloc(8);
  lens.writeUInt32BE(h.byteLength, 0);
  lens.writeUInt32BE(body?.byteLength ?? 0, 4);
  return Buffer.concat(body ? [lens, h, body] : [lens, h]);
}

/** Splits a byte stream into frames; throws on a frame over the bounds. */
export class FrameDecoder {
  #buf: Buffer = Buffer.alloc(0);

  push(chunk: Uint8Array): { header: AgentAnswer; body: Buffer }[] {
    this.#buf = this.#buf.byteLength ? Buffer.concat([this.#buf, chunk]) : Buffer.from(chunk);
    const frames: { header: AgentAnswer; body: Buffer }[] = [];
    for (;;) {
      if (this.#buf.byteLength < 8) break;
      const hl = this.#buf.readUInt32BE(0);
      const bl = this.#buf.readUInt32BE(4);
      if (hl > MAX_HEADER || bl > MAX_BODY) throw new Error(`frame too large: ${hl}+${bl}`);
      if (this.#buf.byteLength < 8 + hl + bl) break;
      const header = JSON.parse(this.#buf.subarray(8, 8 + hl).toString()) as AgentAnswer;
      const body = Buffer.from(this.#buf.subarray(8 + hl, 8 + hl + bl));
      this.#buf = this.#buf.subarray(8 + hl + bl);
      frames.push({ header, body });
    }
    return frames;
  }
}

type Listener = (answer: AgentAnswer, body: Buffer) => void;

/**
 * Why a helper inside the container and not the host's view of its root filesystem: gVisor mounts
 * a container's root with exclusive file access, so the sentry caches what it read and would
 * neither see host-side writes to a running sandbox's overlay nor keep them consistent with its
 * own; and host-side path resolution would have to re-create the container's mounts, symlinks
 * and permissions. A process inside the sandbox sees exactly what the container sees, with its
 * permissions, and works on every backend that can exec (`sandbox.spawn`).
 *
 * The server's side of one container's files agent (`chalk-fs-agent`, a process inside the
 * container, started on first use): requests multiplexed by id over its stdin, answers dispatched
 * from its stdout. Reads are flow-controlled (a window of chunks, acknowledged as consumed), watches
 * bounded. When the agent dies every pending call fails with unavailable and the next call starts
 * a new one.
 */
export class FsAgent {
  #proc: Promise<Process> | undefined;
  #nextId = 1;
  readonly #listeners = new Map<number, Listener>();

  constructor(
    private readonly sandbox: Sandbox,
    /** The agent's path inside the container. */
    private readonly path: string,
  ) {}

  #start(): Promise<Process> {
    if (!this.#proc) {
      const started = this.sandbox.spawn([this.path]);
      this.#proc = started;
      started.then(
        (proc) => this.#pump(proc),
        () => {
          this.#proc = undefined;
        },
      );
    }
    return this.#proc;
  }

  async #pump(proc: Process): Promise<void> {
    const decoder = new FrameDecoder();
    try {
      for await (const chunk of proc.stdout) {
        for (const { header, body } of decoder.push(chunk)) this.#listeners.get(header.id)?.(header, body);
      }
    } catch {
      // The agent's output broke: the same as its end.
    }
    this.#proc = undefined;
    const gone = { code: "unavailable", message: "the container's files agent ended" };
    for (const [id, listener] of this.#listeners) listener({ id, error: gone }, Buffer.alloc(0));
    this.#listeners.clear();
    await proc.wait().catch(() => undefined);
  }

  async #send(header: AgentRequest, body?: Uint8Array): Promise<void> {
    const proc = await this.#start().catch((err: unknown) => {
      throw new ChalkError(
        Code.Unavailable,
        `cannot start the container's files agent: ${ChalkError.from(err).rawMessage}`,
      );
    });
    await proc.stdin.write(encodeFrame(header, body));
  }

  /** One request with one answer. */
  async call(request: AgentRequest): Promise<AgentAnswer> {
    const id = this.#nextId++;
    const answer = new Promise<AgentAnswer>((resolve) => this.#listeners.set(id, (a) => resolve(a)));
    try {
      await this.#send({ ...request, id });
      const a = await answer;
      if (a.error) throw agentError(a.error);
      return a;
    } finally {
      this.#listeners.delete(id);
    }
  }

  /** A file's bytes, chunk by chunk; at most {@link READ_WINDOW} chunks held. */
  async *read(path: string, signal: AbortSignal): AsyncGenerator<Buffer> {
    const id = this.#nextId++;
    const queue: { answer: AgentAnswer; body: Buffer }[] = [];
    let wake: (() => void) | undefined;
    this.#listeners.set(id, (answer, body) => {
      queue.push({ answer, body });
      wake?.();
    });
    let finished = false;
    const onAbort = () => wake?.();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await this.#send({ id, op: "read", path, window: READ_WINDOW });
      for (;;) {
        while (queue.length === 0) {
          signal.throwIfAborted();
          await new Promise<void>((r) => {
            wake = r;
          });
          wake = undefined;
        }
        const { answer, body } = queue.shift() as { answer: AgentAnswer; body: Buffer };
        if (answer.error) {
          finished = true;
          throw agentError(answer.error);
        }
        if (answer.chunk) {
          yield body;
          await this.#send({ id, op: "ack" });
        }
        if (answer.done) {
          finished = true;
          return;
        }
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.#listeners.delete(id);
      if (!finished) await this.#send({ id, op: "cancel" }).catch(() => undefined);
    }
  }

  /** Writes `chunks` to `path` (a temporary file renamed over it at the end); the new stat. */
  async write(path: string, mode: number, chunks: AsyncIterable<Uint8Array>): Promise<AgentStat> {
    const id = this.#nextId++;
    const answers: AgentAnswer[] = [];
    let wake: (() => void) | undefined;
    this.#listeners.set(id, (a) => {
      answers.push(a);
      wake?.();
    });
    const next = async () => {
      while (answers.length === 0) {
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
      }
      const a = answers.shift() as AgentAnswer;
      if (a.error) throw agentError(a.error);
      return a;
    };
    let closed = false;
    try {
      await this.#send({ id, op: "write", path, mode });
      await next(); // ready, or the error of opening
      for await (const chunk of chunks) {
        if (answers[0]?.error) throw agentError(answers[0].error);
        for (let off = 0; off < chunk.byteLength; off += MAX_BODY) {
          await this.#send({ id, op: "data" }, chunk.subarray(off, off + MAX_BODY));
        }
      }
      closed = true;
      await this.#send({ id, op: "close" });
      const done = await next();
      return done.stat as AgentStat;
    } finally {
      this.#listeners.delete(id);
      if (!closed) await this.#send({ id, op: "cancel" }).catch(() => undefined);
    }
  }

  /** Events under `path` until `signal` aborts: first `watching`, then each change. */
  async *watch(
    path: string,
    signal: AbortSignal,
  ): AsyncGenerator<{ kind: "watching" } | { kind: "event"; type: string; path: string }> {
    const id = this.#nextId++;
    const queue: AgentAnswer[] = [];
    let overflow = false;
    let wake: (() => void) | undefined;
    this.#listeners.set(id, (a) => {
      if (queue.length >= WATCH_QUEUE) overflow = true;
      else queue.push(a);
      wake?.();
    });
    const onAbort = () => wake?.();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await this.#send({ id, op: "watch", path });
      while (!signal.aborted) {
        if (overflow) {
          throw new ChalkError(
            Code.ResourceExhausted,
            `watch ${path}: more than ${WATCH_QUEUE} events behind; watch again and list to catch up`,
          );
        }
        const a = queue.shift();
        if (!a) {
          await new Promise<void>((r) => {
            wake = r;
          });
          wake = undefined;
          continue;
        }
        if (a.error) throw agentError(a.error);
        if (a.event) yield { kind: "event", type: a.event.type, path: a.event.path };
        else if (a.done) return;
        else yield { kind: "watching" };
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.#listeners.delete(id);
      await this.#send({ id, op: "cancel" }).catch(() => undefined);
    }
  }

  /** Ends the agent (its stdin EOF). */
  async close(): Promise<void> {
    const proc = await this.#proc?.catch(() => undefined);
    await proc?.stdin.end().catch(() => undefined);
  }
}
