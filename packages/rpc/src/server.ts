import { randomBytes } from "node:crypto";
import { once } from "node:events";
import type { Readable } from "node:stream";
import type { DescMethod } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { deserializer, methodDefinition } from "./codec.js";
import { DEFAULT_ENVIRONMENT, ENVIRONMENT_HEADER } from "./headers.js";
import { mountOn, type RpcServer } from "./rpc-server.js";
import type { AnyService, CallContext, ServiceImpl } from "./service-types.js";
import { statusFromError } from "./status.js";

/**
 * Runs before every handler of a service. Throw a ChalkError to refuse the call (for example
 * unauthenticated); the handler then never runs.
 */
export type ServerInterceptor = (ctx: CallContext) => void | Promise<void>;

/** Options for {@link addService}. */
export interface AddServiceOptions {
  /** Run in order before every handler. */
  interceptors?: readonly ServerInterceptor[];
  /** Observes every call's end: for logs and metrics. `error` is undefined on success. */
  onCallEnd?: (ctx: CallContext, error: unknown, durationMs: number) => void;
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> & {
  metadata: grpc.Metadata;
  getPeer(): string;
};

function contextOf(call: AnyCall, method: DescMethod, signal: AbortSignal): CallContext {
  const get = (key: string): string | undefined => {
    const v = call.metadata.get(key)[0];
    return v === undefined ? undefined : typeof v === "string" ? v : v.toString("utf8");
  };
  return {
    environment: get(ENVIRONMENT_HEADER) || DEFAULT_ENVIRONMENT,
    metadata: get,
    signal,
    peer: call.getPeer(),
    method,
    requestId: randomBytes(6).toString("hex"),
  };
}

/**
 * The request stream of a call as an async iterable of decoded messages, which does not destroy the
 * call when the client half-closes (Node's default iterator would, and that would also end the
 * response side). A malformed message throws invalid_argument from the iteration.
 */
function requestsOf(call: Readable, decode: (bytes: Buffer) => unknown): AsyncIterable<unknown> {
  return {
    async *[Symbol.asyncIterator]() {
      for await (const bytes of call.iterator({ destroyOnReturn: false })) yield decode(bytes as Buffer);
    },
  };
}

function abortOnCancel(call: NodeJS.EventEmitter): AbortController {
  const ac = new AbortController();
  call.once("cancelled", () => ac.abort());
  return ac;
}

/** Writes every message of `messages` to a server stream, waiting for `drain` when it is full. */
async function writeAll(
  call: grpc.ServerWritableStream<unknown, unknown>,
  messages: AsyncIterable<unknown>,
  signal: AbortSignal,
) {
  const iterator = messages[Symbol.asyncIterator]();
  try {
    while (!signal.aborted) {
      const next = await iterator.next();
      if (next.done) break;
      if (!call.write(next.value)) {
        // `once` with a signal removes its listeners either way; an abort ends the loop above.
        await once(call, "drain", { signal }).catch(() => undefined);
      }
    }
  } finally {
    // Tell a generator the client is gone so its `finally` blocks run.
    if (signal.aborted) await iterator.return?.();
  }
}

/**
 * Mounts a protobuf-es service on a server made by {@link createServer}, before it starts. Handlers
 * get typed messages and a {@link CallContext}; the interceptors run first, then the request is
 * decoded (a malformed one fails with invalid_argument, so an unauthenticated caller learns nothing of
 * the schema). A thrown ChalkError becomes the call's status with its field and details (other
 * errors become a generic internal error that reveals nothing). Streaming responses honour
 * backpressure: a client that stops reading stalls the handler's iterable.
 *
 * @example
 * ```ts
 * const server = createServer({ address: "127.0.0.1:50051" });
 * addService(server, SandboxService, sandboxServiceImpl(runtime), { interceptors: [requireToken] });
 * await server.start();
 * ```
 */
export function addService<S extends AnyService>(
  server: RpcServer,
  service: S,
  impl: ServiceImpl<S>,
  options: AddServiceOptions = {},
): void {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  const interceptors = options.interceptors ?? [];
  for (const method of service.methods) {
    const handler = (impl as Record<string, (...a: unknown[]) => unknown>)[method.localName];
    if (typeof handler !== "function") continue;
    const run = handler.bind(impl);
    definition[method.localName] = methodDefinition(method);
    const streamingRequests =
      method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming";
    const decode = deserializer(method.input);
    /** Runs interceptors and the handler; the handler gets one request or the request stream. */
    const serve = (call: AnyCall, ac: AbortController, onCtx: (c: CallContext) => void) =>
      (async () => {
        const ctx = contextOf(call, method, ac.signal);
        onCtx(ctx);
        for (const intercept of interceptors) await intercept(ctx);
        const input = streamingRequests
          ? requestsOf(call as unknown as Readable, decode)
          : decode(call.request as Buffer);
        return { ctx, output: run(input, ctx) };
      })();
    const ended = (ctx: CallContext | undefined, err: unknown, start: number) => {
      if (ctx) options.onCallEnd?.(ctx, err, performance.now() - start);
    };
    if (method.methodKind === "unary" || method.methodKind === "client_streaming") {
      // One response: the handler's promise, answered through the callback.
      handlers[method.localName] = (call: AnyCall, callback: grpc.sendUnaryData<unknown>) => {
        const start = performance.now();
        let ctx: CallContext | undefined;
        serve(call, abortOnCancel(call), (c) => {
          ctx = c;
        })
          .then(({ output }) => output)
          .then(
            (res) => {
              ended(ctx, undefined, start);
              callback(null, res);
            },
            (err) => {
              ended(ctx, err, start);
              callback(statusFromError(err, ctx?.requestId ?? "-"));
            },
          );
      };
    } else {
      // A response stream: the handler's async iterable, written with backpressure.
      handlers[method.localName] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
        const start = performance.now();
        const ac = abortOnCancel(call);
        let ctx: CallContext | undefined;
        serve(call as unknown as AnyCall, ac, (c) => {
          ctx = c;
        })
          .then(({ output }) => writeAll(call, output as AsyncIterable<unknown>, ac.signal))
          .then(
            () => {
              ended(ctx, undefined, start);
              call.end();
            },
            (err) => {
              ended(ctx, err, start);
              call.emit("error", statusFromError(err, ctx?.requestId ?? "-"));
            },
          );
      };
    }
  }
  mountOn(server, service, definition, handlers);
}
