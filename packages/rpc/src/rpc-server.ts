import type { DescFile } from "@bufbuild/protobuf";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import { file_chalk_rpc_v1_status } from "@chalk/proto/rpc/v1";
import * as grpc from "@grpc/grpc-js";
import type { HealthImplementation } from "grpc-health-check";
import { hostOf, isLoopback } from "./address.js";
import { MAX_MESSAGE_BYTES } from "./headers.js";
import { DEFAULT_MAX_UNARY_READS_PER_CONNECTION, unaryReadBudget } from "./read-budget.js";
import type { AnyService } from "./service-types.js";

/** The certificate a server presents, PEM encoded. */
export interface ServerTlsOptions {
  /** The certificate chain (PEM), leaf first. */
  cert: string | Uint8Array;
  /** The private key of the leaf certificate (PEM). */
  key: string | Uint8Array;
}

/** Options for {@link createServer}. */
export interface ServerCreateOptions {
  /** `host:port` to listen on; port 0 picks a free one. */
  address: string;
  /**
   * Serve TLS with this certificate. Without it the server speaks plaintext, which it allows only
   * on a loopback address (`127.0.0.0/8`, `::1`, `localhost`): {@link RpcServer.start} refuses
   * anything else with failed_precondition, since bearer tokens would cross the network in the clear.
   */
  tls?: ServerTlsOptions | undefined;
  /** Serve `grpc.health.v1.Health` (open without credentials, so probes work). Default true. */
  health?: boolean | undefined;
  /** Serve gRPC reflection (v1 and v1alpha, only the public schemas) for grpcurl. Default true. */
  reflection?: boolean | undefined;
  /**
   * Request messages of unary and server-streaming calls that one connection may have arriving at
   * once; further calls wait, their bytes held back by HTTP/2 flow control, so the request memory
   * of a connection is bounded before any handler runs (see {@link unaryReadBudget}). Default
   * {@link DEFAULT_MAX_UNARY_READS_PER_CONNECTION} (4); at least 1.
   */
  maxUnaryReadsPerConnection?: number | undefined;
}

/** Options for {@link RpcServer.stop}. */
export interface ServerStopOptions {
  /** Seconds that calls in flight get to finish before they are cancelled. Default 10. */
  gracePeriodSeconds?: number | undefined;
}

/**
 * A gRPC server for protobuf-es services: mount services with `addService`, then `start()`. It
 * serves health and reflection for the mounted services unless told not to.
 */
export interface RpcServer extends AsyncDisposable {
  /** The address: as configured before `start()`, the bound one (`127.0.0.1:41234`) after. */
  readonly address: string;
  /** Whether it serves TLS. */
  readonly tls: boolean;
  /** Full names of the mounted services (`chalk.sandbox.v1.SandboxService`). */
  readonly services: readonly string[];
  /**
   * Binds and starts serving; resolves with the bound address. Fails with unavailable when the
   * address cannot be bound, failed_precondition for plaintext off loopback.
   */
  start(): Promise<string>;
  /**
   * Stops gracefully: health turns NOT_SERVING, new calls are refused, calls in flight get the grace
   * period, then whatever still runs is cancelled. Resolves when the server is down.
   */
  stop(options?: ServerStopOptions): Promise<void>;
  /** Stops at once, cancelling every call in flight. */
  close(): void;
}

interface ServerInternals {
  grpc: grpc.Server;
  started: boolean;
  names: string[];
  files: DescFile[];
}

const internals = new WeakMap<RpcServer, ServerInternals>();

/**
 * Mounts a grpc-js service definition on a server made by {@link createServer}: the one place where
 * `addService` reaches grpc-js's server.
 */
export function mountOn(
  server: RpcServer,
  service: AnyService,
  definition: grpc.ServiceDefinition,
  handlers: grpc.UntypedServiceImplementation,
): void {
  const s = internals.get(server);
  if (!s) throw new ChalkError(Code.InvalidArgument, "server: not a server made by createServer");
  if (s.started) {
    throw new ChalkError(Code.FailedPrecondition, `server: ${service.typeName} added after start()`);
  }
  s.grpc.addService(definition, handlers);
  s.names.push(service.typeName);
  s.files.push(service.file);
}

function pem(value: string | Uint8Array): Buffer {
  return typeof value === "string" ? Buffer.from(value, "utf8") : Buffer.from(value);
}

/**
 * Creates a gRPC server with Chalk's message limits. Mount services with `addService`, then call
 * `start()`.
 *
 * @example
 * ```ts
 * const server = createServer({ address: "127.0.0.1:0" });
 * addService(server, SandboxService, sandboxServiceImpl(runtime));
 * const address = await server.start();
 * // …
 * await server.stop();
 * ```
 */
export function createServer(options: ServerCreateOptions): RpcServer {
  const reads = options.maxUnaryReadsPerConnection ?? DEFAULT_MAX_UNARY_READS_PER_CONNECTION;
  if (!Number.isSafeInteger(reads) || reads < 1) {
    throw invalidArgument("maxUnaryReadsPerConnection", `${reads} is not a positive integer`);
  }
  const g = new grpc.Server({
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    interceptors: [unaryReadBudget(reads)],
  });
  const state: ServerInternals = { grpc: g, started: false, names: [], files: [] };
  let address = options.address;
  let health: HealthImplementation | undefined;
  let down: Promise<void> | undefined;
  const setHealth = (status: "SERVING" | "NOT_SERVING") => {
    for (const name of ["", ...state.names]) health?.setStatus(name, status);
  };
  const server: RpcServer = {
    get address() {
      return address;
    },
    tls: options.tls !== undefined,
    get services() {
      return [...state.names];
    },
    async start() {
      if (state.started) throw new ChalkError(Code.FailedPrecondition, "server: already started");
      if (!options.tls && !isLoopback(options.address)) {
        throw new ChalkError(
          Code.FailedPrecondition,
          `cannot serve plaintext gRPC on ${options.address}, which is not a loopback address: give the server a TLS certificate and key`,
          { field: "tls" },
        );
      }
      state.started = true;
      // Loaded here, not at import: health and reflection pull in proto-loader and protobufjs, which
      // clients of this package (the SDK, the CLI) never need and would pay for at every start.
      if (options.health !== false || options.reflection !== false) {
        const { addHealth, addReflection } = await import("./introspection.js");
        if (options.health !== false) health = addHealth(g, state.names);
        if (options.reflection !== false) addReflection(g, [...state.files, file_chalk_rpc_v1_status]);
      }
      const credentials = options.tls
        ? grpc.ServerCredentials.createSsl(
            null,
            [{ cert_chain: pem(options.tls.cert), private_key: pem(options.tls.key) }],
            false,
          )
        : grpc.ServerCredentials.createInsecure();
      const port = await new Promise<number>((resolve, reject) =>
        g.bindAsync(options.address, credentials, (err, p) =>
          err
            ? reject(
                new ChalkError(Code.Unavailable, `cannot listen on ${options.address}: ${err.message}`, {
                  cause: err,
                }),
              )
            : resolve(p),
        ),
      );
      const host = hostOf(options.address);
      address = `${host.includes(":") ? `[${host}]` : host}:${port}`;
      setHealth("SERVING");
      return address;
    },
    stop(stopOptions = {}) {
      down ??= new Promise<void>((resolve) => {
        setHealth("NOT_SERVING");
        const graceMs = (stopOptions.gracePeriodSeconds ?? 10) * 1000;
        const timer = setTimeout(() => g.forceShutdown(), graceMs);
        g.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return down;
    },
    close() {
      setHealth("NOT_SERVING");
      g.forceShutdown();
      down ??= Promise.resolve();
    },
    async [Symbol.asyncDispose]() {
      await server.stop();
    },
  };
  internals.set(server, state);
  return server;
}

/** Options for {@link listen}. */
export interface ListenOptions extends ServerCreateOptions {
  /** Called with the server before it starts, to mount services with `addService`. */
  register(server: RpcServer): void;
}

/**
 * Creates a server, lets `register` mount services, and starts it: {@link createServer} and
 * `start()` in one call. Resolves with the started server (`server.address` is the bound address).
 *
 * @example
 * ```ts
 * const server = await listen({
 *   address: "127.0.0.1:0",
 *   register: (s) => addService(s, SandboxService, sandboxServiceImpl(runtime)),
 * });
 * await server.stop();
 * ```
 */
export async function listen(options: ListenOptions): Promise<RpcServer> {
  const { register, ...createOptions } = options;
  const server = createServer(createOptions);
  register(server);
  await server.start();
  return server;
}
