import { connect, type Socket } from "node:net";
import { ChalkError, Code } from "@chalk/core";

/** How long connecting to a container's port may take, in milliseconds. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Opens one TCP connection to `port` at `host`, a container's own address (the caller passes only
 * that; no client names a host). Half-open capable (`allowHalfOpen`): ending the writable side
 * sends a FIN and reading goes on. Rejects with unavailable (naming the port) when the port
 * refuses or does not answer within 10 s, and with aborted when `signal` aborts first.
 */
export function connectPort(host: string, port: number, name: string, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new ChalkError(Code.Aborted, `connecting to port ${port} of ${name} was cancelled`));
      return;
    }
    const socket = connect({ host, port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => fail(new Error("no answer within 10s")), CONNECT_TIMEOUT_MS);
    const onAbort = () =>
      fail(new ChalkError(Code.Aborted, `connecting to port ${port} of ${name} was cancelled`));
    const settle = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      socket.off("error", fail);
    };
    function fail(err: Error) {
      settle();
      socket.destroy();
      reject(
        err instanceof ChalkError
          ? err
          : new ChalkError(
              Code.Unavailable,
              `port ${port} of ${name} does not accept connections: ${(err as NodeJS.ErrnoException).code ?? err.message}`,
              { details: { port } },
            ),
      );
    }
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("error", fail);
    socket.once("connect", () => {
      settle();
      resolve(socket);
    });
  });
}
