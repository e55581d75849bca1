import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { isActive } from "@chalk/spec";
import type { Logger } from "pino";
import type { ContainerRecords } from "../backend/container-records.js";

/** How long logs of finished containers are kept (`--finished-log-retention`, `--finished-log-max-age-secs`). */
export interface LogRetentionPolicy {
  /** Finished containers per environment whose logs are kept, the most recently finished first. */
  keep: number;
  /** Seconds after its last write that a finished container's log is deleted; 0: no age limit. */
  maxAgeSecs: number;
}

const LOG_FILE = /^([0-9a-f-]{36})\.log(\.1)?$/;

/**
 * The retention of finished containers' logs in the local backend's log directory: per
 * environment, the logs of the `keep` most recently finished containers stay (a log's last write
 * is when its container finished), and none stays longer than `maxAgeSecs` after its last write.
 * Logs of active containers (Pending, Running, Unknown) are never touched, and a log whose
 * container has no record any more is deleted. A deleted log reads as empty; the container's record
 * stays. Sweeps run at start, a second after a container ends, and every `intervalMs`; one at a
 * time. While a container runs, its log is bounded by the log store's size bound.
 */
export class LogRetention {
  #sweeping: Promise<string[]> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #soon: NodeJS.Timeout | undefined;

  constructor(
    private readonly dir: string,
    private readonly records: ContainerRecords,
    private readonly policy: LogRetentionPolicy,
    private readonly log: Logger,
  ) {}

  /** Sweeps now and then every `intervalMs` (default 10 minutes). */
  start(intervalMs = 600_000): void {
    this.schedule(0);
    this.#timer = setInterval(() => this.schedule(0), intervalMs);
    this.#timer.unref();
  }

  /** A sweep in `delayMs` (coalesced with one already scheduled): a container ended. */
  schedule(delayMs = 1000): void {
    if (this.#soon) return;
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      this.sweep().catch((err: unknown) =>
        this.log.warn({ error: (err as Error).message }, "log retention sweep failed"),
      );
    }, delayMs);
    this.#soon.unref();
  }

  /** Deletes the logs the policy does not keep; the container ids whose logs went. */
  sweep(now = Date.now()): Promise<string[]> {
    if (this.#sweeping !== undefined) {
      this.#again = true;
      return this.#sweeping;
    }
    this.#sweeping = this.#sweep(now).finally(() => {
      this.#sweeping = undefined;
      if (this.#again) {
        this.#again = false;
        this.schedule(0);
      }
    });
    return this.#sweeping;
  }

  async #sweep(now: number): Promise<string[]> {
    const lastWrite = new Map<string, number>();
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const m = LOG_FILE.exec(name);
      if (!m?.[1]) continue;
      const mtime = await stat(join(this.dir, name)).then(
        (s) => s.mtimeMs,
        () => undefined,
      );
      if (mtime !== undefined) lastWrite.set(m[1], Math.max(lastWrite.get(m[1]) ?? 0, mtime));
    }
    const finished = new Map<string, { id: string; at: number }[]>();
    const doomed: string[] = [];
    for (const [id, at] of lastWrite) {
      const record = await this.records.get(id);
      if (!record) {
        doomed.push(id);
        continue;
      }
      if (isActive(record.status)) continue;
      const list = finished.get(record.environment) ?? [];
      list.push({ id, at: Math.max(at, record.stoppedAt ?? 0) });
      finished.set(record.environment, list);
    }
    const oldest = this.policy.maxAgeSecs > 0 ? now - this.policy.maxAgeSecs * 1000 : -Infinity;
    for (const list of finished.values()) {
      list.sort((a, b) => b.at - a.at);
      list.forEach((l, i) => {
        if (i >= this.policy.keep || l.at < oldest) doomed.push(l.id);
      });
    }
    for (const id of doomed) {
      await rm(join(this.dir, `${id}.log`), { force: true });
      await rm(join(this.dir, `${id}.log.1`), { force: true });
    }
    if (doomed.length > 0) this.log.info({ deleted: doomed.length }, "finished containers' logs deleted");
    return doomed;
  }

  /** Stops the timers. */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#soon) clearTimeout(this.#soon);
  }
}
