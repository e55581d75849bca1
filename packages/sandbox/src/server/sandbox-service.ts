import type { Readable } from "node:stream";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ChalkError, Code, notFound } from "@chalk/core";
import {
  type ExecRequest,
  type ExecResponseSchema,
  type ExecStart,
  type SandboxService,
  Stream,
} from "@chalk/proto/sandbox/v1";
import type { CallContext, ServiceImpl } from "@chalk/rpc";
import { Channel } from "../channel.js";
import { sendableSignal } from "../signals.js";
import type { Process, Sandbox, SandboxCreateOptions, SandboxRuntime, SpawnOptions } from "../types.js";
import { exitToWire, infoToWire, specFromWire } from "../wire.js";
import { coalesced } from "./coalesced.js";

/** The label that records which environment a sandbox belongs to, when the service scopes them. */
export const ENVIRONMENT_LABEL = "chalk.environment";

/** Options for {@link sandboxServiceImpl}. */
export interface SandboxServiceOptions {
  /**
   * Give every sandbox its caller's environment (label {@link ENVIRONMENT_LABEL}) and hide other
   * environments' sandboxes from get, list, exec, signal and stop (they are "not found"). Default true.
   */
  scopeToEnvironment?: boolean;
  /**
   * Checks or rewrites a create request before the runtime sees it (a server applies the caller's
   * environment's default resources here). The request names an image and no host path: the
   * service refuses `rootfs`, `mounts` and `log_path` from every client before this is called.
   */
  admit?: (
    options: SandboxCreateOptions,
    ctx: CallContext,
  ) => Promise<SandboxCreateOptions> | SandboxCreateOptions;
}

type ExecResponseInit = MessageInitShape<typeof ExecResponseSchema>;

/**
 * The gRPC sandbox service over any {@link SandboxRuntime} that starts sandboxes from image
 * references (see `sandboxesFromImages`), for hosts to mount with
 * `addService(server, SandboxService, sandboxServiceImpl(runtime))`. No request may name a host
 * path. Exec streams keep their backpressure: output is read from the process only as fast as the
 * client takes it.
 *
 * @example
 * ```ts
 * import { SandboxService } from "@chalk/proto/sandbox/v1";
 * import { addService, listen } from "@chalk/rpc";
 * import { LocalRuntime } from "@chalk/sandbox/local";
 * import { sandboxesFromImages, sandboxServiceImpl } from "@chalk/sandbox/server";
 *
 * const runtime = sandboxesFromImages(new LocalRuntime({ stateDir: "/var/lib/chalk/sandbox" }), resolveImage);
 * await listen({ address: "127.0.0.1:50051", register: (s) => addService(s, SandboxService, sandboxServiceImpl(runtime)) });
 * ```
 */
export function sandboxServiceImpl(
  runtime: SandboxRuntime,
  options: SandboxServiceOptions = {},
): ServiceImpl<typeof SandboxService> {
  const scoped = options.scopeToEnvironment ?? true;
  // Which environment owns a sandbox never changes; remembering it spares a runtime round trip
  // (a `runsc state` for the local runtime) on every exec.
  const owners = new Map<string, string>();

  /** The sandbox, if it exists and belongs to the caller's environment. */
  async function lookup(id: string, ctx: CallContext): Promise<Sandbox> {
    if (!id)
      throw new ChalkError(Code.InvalidArgument, "id: required; accepted: a sandbox id", { field: "id" });
    const sandbox = await runtime.get(id);
    if (scoped) {
      let owner = owners.get(id);
      if (owner === undefined) {
        owner = (await sandbox.info()).labels[ENVIRONMENT_LABEL] ?? "";
        owners.set(id, owner);
      }
      if (owner !== ctx.environment) throw notFound("sandbox", id);
    }
    return sandbox;
  }

  return {
    async createSandbox(req, ctx) {
      if (!req.spec) throw new ChalkError(Code.InvalidArgument, "spec: required", { field: "spec" });
      let createOptions = specFromWire(req.spec);
      if (scoped) createOptions.labels = { ...createOptions.labels, [ENVIRONMENT_LABEL]: ctx.environment };
      if (options.admit) createOptions = await options.admit(createOptions, ctx);
      const sandbox = await runtime.create(createOptions);
      if (scoped) owners.set(sandbox.id, ctx.environment);
      return { sandbox: infoToWire(await sandbox.info()) };
    },

    async getSandbox(req, ctx) {
      const sandbox = await lookup(req.id, ctx);
      return { sandbox: infoToWire(await sandbox.info()) };
    },

    async listSandboxes(req, ctx) {
      const labels = scoped ? { ...req.labels, [ENVIRONMENT_LABEL]: ctx.environment } : { ...req.labels };
      const list = await runtime.list({ labels });
      return { sandboxes: list.map(infoToWire) };
    },

    async signalSandbox(req, ctx) {
      const signal = sendableSignal(req.signal);
      const sandbox = await lookup(req.id, ctx);
      await sandbox.signal(signal);
      return {};
    },

    async waitSandbox(req, ctx) {
      const sandbox = await lookup(req.id, ctx);
      return { exit: exitToWire(await sandbox.wait()) };
    },

    async stopSandbox(req, ctx) {
      const sandbox = await lookup(req.id, ctx);
      if (!(req.gracePeriodSeconds >= 0 && req.gracePeriodSeconds <= 86_400)) {
        throw new ChalkError(Code.InvalidArgument, "grace_period_seconds: accepted: 0 to 86400", {
          field: "grace_period_seconds",
        });
      }
      await sandbox.stop({ gracePeriodSeconds: req.gracePeriodSeconds });
      owners.delete(req.id);
      return {};
    },

    async *exec(requests, ctx) {
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      if (first.done || first.value.message.case !== "start") {
        throw new ChalkError(Code.InvalidArgument, "the first exec message must be `start`", {
          field: "start",
        });
      }
      const start = first.value.message.value;
      const sandbox = await lookup(start.sandboxId, ctx);
      // A call cancelled before its process starts (while it waits for an exec slot) starts nothing.
      const proc = await sandbox.spawn(start.argv, { ...spawnOptionsOf(start), signal: ctx.signal });
      let handedOver = false;
      try {
        yield { event: { case: "started", value: { pid: proc.pid } } };
        handedOver = true;
      } finally {
        // The call ended before anyone learnt of the process: do not leave it running.
        if (!handedOver) await proc.signal("SIGKILL").catch(() => undefined);
      }

      // Client messages (stdin, EOF, signals, resizes) are applied in the background for as long as
      // the client sends them; the response side ends when the process has exited. It never rejects.
      void applyControl(iterator, proc);
      const events = new Channel<ExecResponseInit>();
      const forward = async (stream: Readable, kind: Stream) => {
        for await (const data of coalesced(stream))
          await events.send({ event: { case: "output", value: { stream: kind, data } } });
      };
      const outputKind = start.pty ? Stream.PTY : Stream.STDOUT;
      const done = Promise.all([
        forward(proc.stdout, outputKind),
        forward(proc.stderr, Stream.STDERR),
      ]).finally(() => events.close());
      // Handled here at once: `done` may fail while the response side still waits for the client
      // to take the last output; it is awaited (and its error reported) after that.
      done.catch(() => undefined);
      try {
        yield* events;
        await done;
        yield { event: { case: "exited", value: exitToWire(await proc.wait()) } };
      } finally {
        // The client went away before the process ended: do not leave it running.
        if (ctx.signal.aborted) await proc.signal("SIGKILL").catch(() => undefined);
        // Nobody takes output any more: release the forwarders (a pending send resolves), end the
        // streams under them, and wait for them to stop. Their reads of the destroyed streams fail
        // ("premature close"), which is the expected end here, not an error to report.
        events.close();
        proc.stdout.destroy();
        proc.stderr.destroy();
        await done.catch(() => undefined);
      }
    },
  };
}

function spawnOptionsOf(start: ExecStart): SpawnOptions {
  const o: SpawnOptions = {};
  if (Object.keys(start.env).length > 0) o.env = { ...start.env };
  if (start.workdir) o.workdir = start.workdir;
  if (start.timeoutSecs > 0) o.timeoutSecs = start.timeoutSecs;
  if (start.pty) o.pty = { cols: start.pty.cols, rows: start.pty.rows };
  return o;
}

async function applyControl(iterator: AsyncIterator<ExecRequest>, proc: Process): Promise<void> {
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      const m = next.value.message;
      switch (m.case) {
        case "stdin":
          // Bytes for a stdin the process closed (or a process that exited) are dropped quietly;
          // later messages (a signal, a resize) still apply.
          await proc.stdin.write(m.value).catch(() => undefined);
          break;
        case "stdinEof":
          await proc.stdin.end().catch(() => undefined);
          break;
        case "signal":
          await proc.signal(m.value);
          break;
        case "resize":
          await proc.resize(m.value.cols, m.value.rows);
          break;
        case "start":
          throw new ChalkError(Code.InvalidArgument, "start: sent twice", { field: "start" });
      }
    }
  } catch {
    // stdin of an exited process, a signal after exit: the process's end is reported by `exited`.
  }
}
