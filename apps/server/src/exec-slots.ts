import { ChalkError, Code } from "@chalk/core";

/**
 * The bounds of {@link ExecSlots}, from the server's configuration (`--max-concurrent-execs` and
 * the `--max-*-execs-*` flags). Every count is of execs (each one a `runsc exec` process).
 */
export interface ExecSlotLimits {
  /** Execs running at once across the server: the one limit every exec path shares. */
  total: number;
  /** Execs running at once in one container or sandbox (below `total`, so none takes them all). */
  perContainer: number;
  /** Execs running at once in one environment (below `total`, so none takes them all). */
  perEnvironment: number;
  /**
   * Long-lived execs (interactive or on a terminal, or without a timeout) running at once in one
   * container: they may run for ever, so they get a bound of their own below `perContainer`.
   */
  longPerContainer: number;
  /** Long-lived execs running at once in one environment. */
  longPerEnvironment: number;
  /** Execs waiting for a slot across the server; one more is refused with resource_exhausted. */
  queued: number;
  /** Execs one environment may have waiting (below `queued`, so none fills the queue). */
  queuedPerEnvironment: number;
  /** Bytes of stdin that waiting execs may hold together; more is refused with resource_exhausted. */
  queuedStdinBytes: number;
}

/**
 * Limits derived from `--max-concurrent-execs` for the flags not given: a container gets half the
 * slots, an environment three quarters, long-lived execs a quarter (per container an eighth), and
 * up to 64 waiters per slot may queue (three quarters of them from one environment: 1,536 with 32
 * slots, enough for 1,000 execs in flight in one environment) holding at most 64 MiB of stdin.
 */
export function defaultExecSlotLimits(total: number, given: Partial<ExecSlotLimits> = {}): ExecSlotLimits {
  const part = (f: number) => Math.max(1, Math.floor(total * f));
  const queued = given.queued ?? total * 64;
  return {
    total,
    perContainer: given.perContainer ?? part(1 / 2),
    perEnvironment: given.perEnvironment ?? part(3 / 4),
    longPerContainer: given.longPerContainer ?? part(1 / 8),
    longPerEnvironment: given.longPerEnvironment ?? part(1 / 4),
    queued,
    queuedPerEnvironment: given.queuedPerEnvironment ?? Math.max(1, Math.floor(queued * 0.75)),
    queuedStdinBytes: given.queuedStdinBytes ?? 64 * 1024 * 1024,
  };
}

/** Who asks for a slot, and what kind of exec it is. */
export interface ExecClaim {
  /** The container (or sandbox) id the exec runs in. */
  container: string;
  /** The environment the container belongs to. */
  environment: string;
  /** Interactive, on a terminal, or without a timeout: bounded by the `long*` limits too. */
  longLived: boolean;
  /** Bytes of stdin the request holds while it waits (buffered execs), for the stdin bound. */
  stdinBytes?: number;
}

interface Waiter {
  claim: ExecClaim;
  grant: (release: () => void) => void;
}

/** Releases a slot; calling it again does nothing. */
export type ReleaseSlot = () => void;

/**
 * The exec slots of a server, shared by every exec path (ContainerService.ExecContainer and
 * SandboxService.Exec): at most `total` execs run at once, and no container or environment can
 * take them all (`perContainer`, `perEnvironment`); long-lived execs have their own, smaller
 * bounds, so they cannot hold every slot that short execs need. Execs beyond a bound wait in one
 * queue, served in arrival order among those a freed slot may go to (a waiter over its own
 * container's bound does not hold up another container's). The queue is bounded by count, per
 * environment and by the stdin bytes its waiters hold: past those a request is refused at once
 * with resource_exhausted naming the flag. An exec holds its slot until it ends; a waiter whose
 * caller gives up leaves the queue.
 */
export class ExecSlots {
  readonly limits: ExecSlotLimits;
  #running = 0;
  readonly #perContainer = new Map<string, number>();
  readonly #perEnvironment = new Map<string, number>();
  readonly #longPerContainer = new Map<string, number>();
  readonly #longPerEnvironment = new Map<string, number>();
  readonly #queuedPerEnvironment = new Map<string, number>();
  #queuedStdin = 0;
  readonly #waiting: Waiter[] = [];

  constructor(limits: ExecSlotLimits) {
    this.limits = limits;
  }

  /** Execs running now. */
  get running(): number {
    return this.#running;
  }

  /** Execs waiting now. */
  get queued(): number {
    return this.#waiting.length;
  }

  /** Runs `work` holding a slot for `claim`; the slot is released when `work` settles. */
  async run<T>(claim: ExecClaim, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(claim, signal);
    try {
      return await work();
    } finally {
      release();
    }
  }

  /**
   * A slot for `claim`, at once when one may go to it, else after waiting in the queue.
   * resource_exhausted when the queue is full; cancelled (the signal's reason) when `signal`
   * aborts while waiting.
   */
  acquire(claim: ExecClaim, signal?: AbortSignal): Promise<ReleaseSlot> {
    try {
      signal?.throwIfAborted();
      if (this.#waiting.length === 0 && this.#fits(claim)) return Promise.resolve(this.#take(claim));
      this.#checkQueue(claim);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<ReleaseSlot>((resolve, reject) => {
      const waiter: Waiter = {
        claim,
        grant: (release) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(release);
        },
      };
      const onAbort = () => {
        const i = this.#waiting.indexOf(waiter);
        if (i < 0) return;
        this.#dequeue(i);
        reject(signal?.reason ?? new ChalkError(Code.Canceled, "the exec was cancelled while it waited"));
        this.#serve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(waiter);
      add(this.#queuedPerEnvironment, claim.environment, 1);
      this.#queuedStdin += claim.stdinBytes ?? 0;
      // A waiter ahead of this one may be over its own bounds while this one is not.
      this.#serve();
    });
  }

  #checkQueue(claim: ExecClaim): void {
    const l = this.limits;
    const refuse = (what: string, flag: string) =>
      new ChalkError(
        Code.ResourceExhausted,
        `too many execs waiting: ${what}; try again later (the server's ${flag})`,
        { details: { flag } },
      );
    if (this.#waiting.length >= l.queued) throw refuse(`${l.queued} across the server`, "--max-queued-execs");
    if ((this.#queuedPerEnvironment.get(claim.environment) ?? 0) >= l.queuedPerEnvironment)
      throw refuse(
        `${l.queuedPerEnvironment} in environment ${JSON.stringify(claim.environment)}`,
        "--max-queued-execs-per-environment",
      );
    if (this.#queuedStdin + (claim.stdinBytes ?? 0) > l.queuedStdinBytes)
      throw refuse(`their stdin would pass ${l.queuedStdinBytes} bytes`, "--max-queued-exec-stdin-bytes");
  }

  #fits(c: ExecClaim): boolean {
    const l = this.limits;
    if (this.#running >= l.total) return false;
    if ((this.#perContainer.get(c.container) ?? 0) >= l.perContainer) return false;
    if ((this.#perEnvironment.get(c.environment) ?? 0) >= l.perEnvironment) return false;
    if (!c.longLived) return true;
    return (
      (this.#longPerContainer.get(c.container) ?? 0) < l.longPerContainer &&
      (this.#longPerEnvironment.get(c.environment) ?? 0) < l.longPerEnvironment
    );
  }

  #take(c: ExecClaim): ReleaseSlot {
    const delta = (d: number) => {
      this.#running += d;
      add(this.#perContainer, c.container, d);
      add(this.#perEnvironment, c.environment, d);
      if (c.longLived) {
        add(this.#longPerContainer, c.container, d);
        add(this.#longPerEnvironment, c.environment, d);
      }
    };
    delta(1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      delta(-1);
      this.#serve();
    };
  }

  #dequeue(i: number): Waiter | undefined {
    const [w] = this.#waiting.splice(i, 1);
    if (w) {
      add(this.#queuedPerEnvironment, w.claim.environment, -1);
      this.#queuedStdin -= w.claim.stdinBytes ?? 0;
    }
    return w;
  }

  /** Gives free slots to the earliest waiters that may have them. */
  #serve(): void {
    for (let i = 0; i < this.#waiting.length && this.#running < this.limits.total; ) {
      const w = this.#waiting[i];
      if (w && this.#fits(w.claim)) {
        this.#dequeue(i);
        w.grant(this.#take(w.claim));
      } else i++;
    }
  }
}

function add(map: Map<string, number>, key: string, d: number): void {
  const n = (map.get(key) ?? 0) + d;
  if (n === 0) map.delete(key);
  else map.set(key, n);
}
