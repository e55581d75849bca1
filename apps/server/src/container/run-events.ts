import type { BuildLogLine } from "../backend/compute-backend.js";
import type { ContainerRecord } from "../backend/container-records.js";

/** An event of a run, as RunContainer and StartContainer stream it. */
export type RunEvent =
  | { kind: "build_log"; log: BuildLogLine }
  | { kind: "container"; container: ContainerRecord };

/** Bytes of build log one slow reader may have waiting before the oldest lines are dropped. */
export const RUN_LOG_QUEUE_BYTES = 1024 * 1024;

/**
 * The events of one run for one reader. Build output arrives whenever the builder writes it and
 * cannot wait for a reader, so the queue is bounded by bytes: when a reader falls behind, the
 * oldest lines are dropped and a line says how many bytes went. Iterate it until {@link close}.
 */
export class RunEventQueue implements AsyncIterable<RunEvent> {
  readonly #items: RunEvent[] = [];
  #bytes = 0;
  #dropped = 0;
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(private readonly maxBytes = RUN_LOG_QUEUE_BYTES) {}

  /** Queues an event; build output beyond the bound pushes the oldest build output out. */
  push(event: RunEvent): void {
    if (this.#closed) return;
    if (event.kind === "build_log") {
      const size = Buffer.byteLength(event.log.text);
      while (this.#bytes + size > this.maxBytes) {
        const i = this.#items.findIndex((e) => e.kind === "build_log");
        if (i < 0) break;
        const [old] = this.#items.splice(i, 1);
        if (old?.kind === "build_log") {
          const n = Buffer.byteLength(old.log.text);
          this.#bytes -= n;
          this.#dropped += n;
        }
      }
      if (size > this.maxBytes) {
        this.#dropped += size;
        this.#wake?.();
        return;
      }
      this.#bytes += size;
    }
    this.#items.push(event);
    this.#wake?.();
  }

  /** Ends the iteration once the queued events are read. */
  close(): void {
    this.#closed = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<RunEvent> {
    for (;;) {
      if (this.#dropped > 0) {
        const n = this.#dropped;
        this.#dropped = 0;
        const next = this.#items.find((e) => e.kind === "build_log");
        const at = next?.kind === "build_log" ? next.log : { step: 0, steps: 0 };
        yield {
          kind: "build_log",
          log: {
            step: at.step,
            steps: at.steps,
            text: `[${n} bytes of build output dropped: the client read too slowly]\n`,
          },
        };
      }
      const e = this.#items.shift();
      if (e) {
        if (e.kind === "build_log") this.#bytes -= Buffer.byteLength(e.log.text);
        yield e;
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((r) => {
        this.#wake = r;
      });
      this.#wake = undefined;
    }
  }
}
