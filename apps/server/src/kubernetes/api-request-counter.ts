import { subscribe, unsubscribe } from "node:diagnostics_channel";
import type { ClientRequest } from "node:http";

/**
 * Counts the HTTP requests this process sends to one Kubernetes API server, by method, as Node's
 * `http.client.request.start` diagnostics channel reports them: every request of the API client
 * (`@kubernetes/client-node`'s fetch calls), each watch (re)connection of the informer, and each
 * exec or attach WebSocket upgrade. It sees the requests on the wire, under the client, so nothing
 * the client does (retries, informer relists) goes uncounted. Every request to `host:port` from this
 * process counts, so two servers in one process against one API server count each other's too.
 */
export class ApiRequestCounter {
  readonly #counts = new Map<string, number>();
  readonly #onStart = (message: unknown) => {
    const request = (message as { request?: ClientRequest }).request;
    if (!request || !this.#hostHeaders.has(String(request.getHeader("host")))) return;
    this.#counts.set(request.method, (this.#counts.get(request.method) ?? 0) + 1);
  };
  /** The Host headers of requests to the API server (with the port, and without it when it is the default). */
  readonly #hostHeaders: Set<string>;

  /** Starts counting requests to `server` (the kubeconfig's `https://HOST:PORT` URL). */
  constructor(server: string) {
    // No parsable server URL: nothing to count (the client fails on it with its own error).
    const url = URL.canParse(server) ? new URL(server) : undefined;
    if (!url) {
      this.#hostHeaders = new Set();
      return;
    }
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    this.#hostHeaders = new Set([`${url.hostname}:${port}`, ...(url.port ? [] : [url.hostname])]);
    subscribe("http.client.request.start", this.#onStart);
  }

  /** Requests counted so far, by HTTP method (`GET`, `POST`, `DELETE`, ...). */
  byMethod(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }

  /** Stops counting. */
  close(): void {
    unsubscribe("http.client.request.start", this.#onStart);
  }
}
