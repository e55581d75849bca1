import { once } from "node:events";
import type { DescMethod } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { deserializer, errorFromStatus, methodPath, serializer } from "./codec.js";
import {
  AUTHORIZATION_HEADER,
  DEFAULT_ADDRESS,
  DEFAULT_ENVIRONMENT,
  ENVIRONMENT_HEADER,
  MAX_MESSAGE_BYTES,
} from "./headers.js";
import type { AnyService, CallOptions, Client } from "./service-types.js";

/** Options for {@link createTransport}. Each falls back to an environment variable. */
export interface TransportCreateOptions {
  /** `host:port` of the server. Default: `CHALK_API_SERVER`, else `127.0.0.1:50051`. */
  address?: string;
  /** Bearer token. Default: `CHALK_TOKEN`. */
  token?: string;
  /** Environment to act in. Default: `CHALK_ENVIRONMENT`, else `"default"`. */
  environment?: string;
  /** Use TLS with the system's roots. Default false (plaintext, for loopback and private networks). */
  tls?: boolean;
}

/** A connection to a Chalk server, shared by every client made from it. */
export interface Transport {
  /** The server address. */
  readonly address: string;
  /** The environment calls act in. */
  readonly environment: string;
  /** The underlying channel; only `@chalk/rpc` uses it. */
  readonly channel: grpc.Client;
  /** Headers sent with every call. */
  metadata(): grpc.Metadata;
  /** Closes the connection. */
  close(): void;
}

/**
 * Opens a connection to a Chalk server. Explicit options override `CHALK_API_SERVER`,
 * `CHALK_TOKEN` and `CHALK_ENVIRONMENT`.
 *
 * @example
 * ```ts
 * const transport = createTransport({ address: "127.0.0.1:50051", token: process.env.CHALK_TOKEN });
 * const sandboxes = createClient(SandboxService, transport);
 * ```
 */
export function createTransport(options: TransportCreateOptions = {}): Transport {
  const address = options.address ?? process.env.CHALK_API_SERVER ?? DEFAULT_ADDRESS;
  const token = options.token ?? process.env.CHALK_TOKEN;
  const environment = options.environment ?? process.env.CHALK_ENVIRONMENT ?? DEFAULT_ENVIRONMENT;
  const credentials = options.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
  const channel = new grpc.Client(address, credentials, {
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_permit_without_calls": 0,
  });
  return {
    address,
    environment,
    channel,
    metadata() {
      const md = new grpc.Metadata();
      md.set(ENVIRONMENT_HEADER, environment);
      if (token) md.set(AUTHORIZATION_HEADER, `Bearer ${token}`);
      return md;
    },
    close() {
      channel.close();
    },
  };
}

const shared = new Map<string, Transport>();

/**
 * The transport for the current environment variables, created once per distinct
 * (address, token, environment) and reused: SDK objects call this when given no transport.
 */
export function defaultTransport(options: TransportCreateOptions = {}): Transport {
  const key = JSON.stringify([
    options.address ?? process.env.CHALK_API_SERVER,
    options.token ?? process.env.CHALK_TOKEN,
    options.environment ?? process.env.CHALK_ENVIRONMENT,
    options.tls ?? false,
  ]);
  let t = shared.get(key);
  if (!t) {
    t = createTransport(options);
    shared.set(key, t);
  }
  return t;
}

function callOptionsOf(options: CallOptions | undefined): grpc.CallOptions {
  return options?.timeoutSecs ? { deadline: Date.now() + options.timeoutSecs * 1000 } : {};
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
  const ch = transport.channel;
  switch (method.methodKind) {
    case "unary":
      return (request: unknown, options?: CallOptions) =>
        new Promise((resolve, reject) => {
          const call = ch.makeUnaryRequest(
            path,
            ser,
            deser,
            request,
            transport.metadata(),
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
          transport.metadata(),
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
            transport.metadata(),
            callOptionsOf(options),
            (err, res) => (err ? reject(errorFromStatus(err)) : resolve(res)),
          );
          cancelOnAbort(call, options?.signal);
          pump(call, requests).catch(reject);
        });
    case "bidi_streaming":
      return (requests: AsyncIterable<unknown>, options?: CallOptions) => {
        const call = ch.makeBidiStreamRequest(path, ser, deser, transport.metadata(), callOptionsOf(options));
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
