import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ChalkError, Code } from "@chalk/core";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** The server's Prometheus metrics. */
export class ServerMetrics {
  /** The registry `/metrics` serves. */
  readonly registry = new Registry();
  /** Containers by status (collected from the database at scrape time). */
  readonly containers: Gauge<"status">;
  /** Container execs by result (`ok`, `timeout`, `error`). */
  readonly execs: Counter<"result">;
  /** Container exec latency in seconds, from request to response. */
  readonly execSeconds: Histogram;
  /** Image build durations in seconds, by result (`cached`, `built`, `failed`). */
  readonly buildSeconds: Histogram<"result">;
  /** Bytes streamed to clients, by kind (`exec_stdout`, `exec_stderr`, `logs`, `build_log`). */
  readonly bytesStreamed: Counter<"kind">;
  /** gRPC calls by method and code. */
  readonly calls: Counter<"method" | "code">;

  constructor(countContainers: () => Record<string, number>) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "chalk_server_" });
    this.containers = new Gauge({
      name: "chalk_containers",
      help: "Containers by status",
      labelNames: ["status"],
      registers,
      collect() {
        this.reset();
        for (const [status, n] of Object.entries(countContainers())) this.set({ status }, n);
      },
    });
    this.execs = new Counter({
      name: "chalk_container_execs_total",
      help: "Container execs by result",
      labelNames: ["result"],
      registers,
    });
    this.execSeconds = new Histogram({
      name: "chalk_container_exec_duration_seconds",
      help: "Container exec latency, request to response",
      buckets: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.buildSeconds = new Histogram({
      name: "chalk_image_build_duration_seconds",
      help: "Image get-or-build durations by result",
      labelNames: ["result"],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800],
      registers,
    });
    this.bytesStreamed = new Counter({
      name: "chalk_bytes_streamed_total",
      help: "Bytes sent to clients by kind",
      labelNames: ["kind"],
      registers,
    });
    this.calls = new Counter({
      name: "chalk_grpc_calls_total",
      help: "gRPC calls by method and status code",
      labelNames: ["method", "code"],
      registers,
    });
  }

  /** Serves `GET /metrics` on `address` (`host:port`; port 0 picks one). Resolves with the bound address. */
  /**
   * Exports the exec slots as `chalk_exec_slots{state="running"|"queued"}`: execs running now (each
   * a runsc exec) and execs waiting for a slot.
   */
  observeExecSlots(read: () => { running: number; queued: number }): void {
    new Gauge({
      name: "chalk_exec_slots",
      help: "Exec slots: execs running and execs waiting",
      labelNames: ["state"],
      registers: [this.registry],
      collect() {
        const { running, queued } = read();
        this.set({ state: "running" }, running);
        this.set({ state: "queued" }, queued);
      },
    });
  }

  async serve(address: string): Promise<{ server: Server; address: string }> {
    const server = createServer((req, res) => {
      if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
        res.writeHead(404).end("not found: GET /metrics\n");
        return;
      }
      this.registry.metrics().then(
        (body) => res.writeHead(200, { "content-type": this.registry.contentType }).end(body),
        () => res.writeHead(500).end("metrics failed\n"),
      );
    });
    const sep = address.lastIndexOf(":");
    const host = address.slice(0, sep).replace(/^\[|\]$/g, "");
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) =>
        reject(
          new ChalkError(Code.Unavailable, `cannot listen on ${address}: ${err.message}`, { cause: err }),
        ),
      );
      server.listen(Number(address.slice(sep + 1)), host, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    return { server, address: `${address.slice(0, sep)}:${port}` };
  }
}
