import { createServer, type Server, type Socket } from "node:net";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import type { ContainerService, PortForwardRequestSchema } from "@chalk/proto/container/v1";
import type { Client } from "@chalk/rpc";
import { checkPort } from "@chalk/spec";

/** Options of {@link Container.forward}. */
export interface PortForwardOptions {
  /** The local port to listen on; 0 or absent: any free port (read it from `port`). */
  localPort?: number;
  /** The local address to listen on: `127.0.0.1` (the default), `::1`, or another local address. */
  host?: string;
  /** Called with each tunnelled connection's failure (the local connection is reset). */
  onError?: (err: ChalkError) => void;
}

type Request = MessageInitShape<typeof PortForwardRequestSchema>;

/** Resolves once `socket` can take more, or has closed. */
function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off("drain", done);
      socket.off("close", done);
      resolve();
    };
    socket.once("drain", done);
    socket.once("close", done);
  });
}

/**
 * A local TCP listener whose every connection is tunnelled to a port of a running container
 * through the server (one PortForward gRPC stream per connection, over the container's own
 * authenticated, possibly TLS, connection), as `kubectl port-forward` does. Made by
 * {@link Container.forward}.
 *
 * Each direction has backpressure end to end (a local reader that stops reading stalls the
 * container's writer, and the other way round) and half-close travels both ways (ending the local
 * socket's writable side sends a FIN to the container's port; the container's FIN ends the local
 * socket's readable side).
 */
export class PortForward implements AsyncDisposable {
  readonly #server: Server;
  readonly #connections = new Set<Socket>();
  readonly #calls = new Set<AbortController>();

  private constructor(
    server: Server,
    /** The port inside the container. */
    readonly remotePort: number,
  ) {
    this.#server = server;
  }

  /** Listens and tunnels; resolves once the local port is bound. */
  static async open(
    client: Client<typeof ContainerService>,
    containerId: string,
    remotePort: number,
    options: PortForwardOptions = {},
  ): Promise<PortForward> {
    const port = checkPort(remotePort, "port");
    if (port === undefined) throw invalidArgument("port", "required", "an integer from 1 to 65535");
    const localPort = options.localPort ?? 0;
    if (localPort !== 0) checkPort(localPort, "localPort");
    const server = createServer({ allowHalfOpen: true, noDelay: true });
    const fwd = new PortForward(server, port);
    server.on("connection", (socket) => fwd.#tunnel(client, containerId, socket, options.onError));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) =>
        reject(
          new ChalkError(
            Code.FailedPrecondition,
            `cannot listen on ${options.host ?? "127.0.0.1"}:${localPort}: ${err.code ?? err.message}`,
            { field: "localPort" },
          ),
        ),
      );
      server.listen({ host: options.host ?? "127.0.0.1", port: localPort }, resolve);
    });
    return fwd;
  }

  /** The local address the listener is bound to. */
  get host(): string {
    return (this.#server.address() as { address: string }).address;
  }

  /** The local port the listener is bound to. */
  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  /** `host:port` of the local listener (`[::1]:port` for IPv6). */
  get address(): string {
    return this.host.includes(":") ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  /** Connections being tunnelled now. */
  get connections(): number {
    return this.#connections.size;
  }

  #tunnel(
    client: Client<typeof ContainerService>,
    containerId: string,
    socket: Socket,
    onError: PortForwardOptions["onError"],
  ): void {
    const ac = new AbortController();
    this.#connections.add(socket);
    this.#calls.add(ac);
    socket.setNoDelay(true);
    const remotePort = this.remotePort;
    // The local socket is read only as fast as gRPC takes the frames (pump awaits drain).
    async function* requests(): AsyncGenerator<Request> {
      yield { frame: { case: "open", value: { ref: { case: "id", value: containerId }, port: remotePort } } };
      try {
        for await (const chunk of socket.iterator({ destroyOnReturn: false })) {
          yield { frame: { case: "data", value: chunk as Buffer } };
        }
      } catch {
        // The local socket broke: the call is cancelled below.
        ac.abort();
      }
      // End of the local stream: the request stream ends, a half-close the server turns into a FIN.
    }
    socket.on("error", () => ac.abort());
    socket.on("close", () => ac.abort());
    (async () => {
      for await (const res of client.portForward(requests(), { signal: ac.signal })) {
        const frame = res.frame;
        if (frame.case === "data") {
          if (!socket.write(frame.value)) await drained(socket);
        } else if (frame.case === "eof") {
          socket.end();
        }
      }
      // The call ended well: both sides are done.
      socket.end();
    })()
      .catch((err: unknown) => {
        if (!ac.signal.aborted) onError?.(ChalkError.from(err));
        socket.resetAndDestroy();
      })
      .finally(() => {
        this.#connections.delete(socket);
        this.#calls.delete(ac);
      });
  }

  /** Stops listening and ends every tunnelled connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const ac of this.#calls) ac.abort();
    for (const socket of this.#connections) socket.destroy();
    await closed;
  }

  /** Closes the forward (`await using fwd = await c.forward(8080)`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
