import { once } from "node:events";
import type { DescMethod } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { deserializer, methodPath, serializer } from "./codec.js";
import type { AnyService, CallOptions, Client } from "./service-types.js";
import { errorFromStatus } from "./status.js";
import { internalsOf, type Transport } from "./transport.js";

/** The grpc-js deadline of a call: the earlier of `deadline` and now + `timeoutSecs`. */
function callOptionsOf(options: CallOptions | undefined): grpc.CallOptions {
  const bounds: number[] = [];
  if (options?.timeoutSecs) bounds.push(Date.now() + options.timeoutSecs * 1000);
  if (options?.deadline) bounds.push(options.deadline.getTime());
  return bounds.length > 0 ? { deadline: Math.min(...bounds) } : {};
}

function cancelOnAbort(call: { cancel(): void }, signal: AbortSignal | undefined) {
  if (!signal) return;
  if (signal.aborted) call.cancel();
  else signal.addEventListener("abort", () => call.cancel(), { once: true });
}

/** Writes requests to a client stream, awaiting `drain`, then half-closes it. */
async function pump(
  call: grpc.ClientWritableStream<unknown>,
  requests: AsyncIterable<unknown>,
): Promise<void> {
  try {
    for await (const req of requests) {
      if (!call.write(req)) await once(call, "drain");
    }
    call.end();
  } catch (err) {
    // Either the caller's iterable failed or the call ended under us; the call reports the latter.
    call.cancel();
    throw err;
  }
}

/** Yields a response stream's messages, translating errors; an early `break` cancels the call. */
async function* responses<T>(
  call: grpc.ClientReadableStream<unknown> & { cancel(): void },
): AsyncGenerator<T> {
  let done = false;
  try {
    for await (const msg of call) yield msg as T;
    done = true;
  } catch (err) {
    done = true;
    throw errorFromStatus(err);
  } finally {
    if (!done) call.cancel();
  }
}

function clientMethod(transport: Transport, method: DescMethod) {
  const path = methodPath(method);
  const ser = serializer(method.input);
  const deser = deserializer(method.output);
  const { channel: ch, metadata } = internalsOf(transport);
  switch (method.methodKind) {
    case "unary":
      return (request: unknown, options?: CallOptions) =>
        new Promise((resolve, reject) => {
          const call = ch.makeUnaryRequest(
            path,
            ser,
            deser,
            request,
            metadata(),
            callOptionsOf(options),
            (err, res) => (err ? reject(errorFromStatus(err)) : resolve(res)),
          );
          cancelOnAbort(call, options?.signal);
        });
    case "server_streaming":
      return (request: unknown, options?: CallOptions) => {
        const call = ch.makeServerStreamRequest(
          path,
          ser,
          deser,
          request,
          metadata(),
          callOptionsOf(options),
        );
        cancelOnAbort(call, options?.signal);
        return responses(call);
      };
    case "client_streaming":
      return (requests: AsyncIterable<unknown>, options?: CallOptions) =>
        new Promise((resolve, reject) => {
          const call = ch.makeClientStreamRequest(
            path,
            ser,
            deser,
            metadata(),
            callOptionsOf(options),
            (err, res) => (err ? reject(errorFromStatus(err)) : resolve(res)),
          );
          cancelOnAbort(call, options?.signal);
          pump(call, requests).catch(reject);
        });
    case "bidi_streaming":
      return (requests: AsyncIterable<unknown>, options?: CallOptions) => {
        const call = ch.makeBidiStreamRequest(path, ser, deser, metadata(), callOptionsOf(options));
        cancelOnAbort(call, options?.signal);
        // A failed pump cancels the call, which surfaces through the response stream.
        pump(call, requests).catch(() => undefined);
        return responses(call);
      };
  }
}

/**
 * A typed client for a protobuf-es service over a {@link Transport}. Unary methods return promises;
 * streams are async iterables with backpressure in both directions. Failures are ChalkErrors with
 * the server's code and message.
 */
export function createClient<S extends AnyService>(service: S, transport: Transport): Client<S> {
  const client: Record<string, unknown> = {};
  for (const method of service.methods) client[method.localName] = clientMethod(transport, method);
  return client as Client<S>;
}
