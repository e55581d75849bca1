import { ChalkError, Code } from "@chalk/core";
import type { CoreV1Api, V1Secret } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { withRetry } from "./kubernetes-errors.js";
import { CONTAINER_ID_LABEL, INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL } from "./kubernetes-names.js";

/**
 * How old a container's Secret without an owner must be before a sweep deletes it, in milliseconds.
 * The server creates a container's Secret, then its Pod, then makes the Pod own the Secret; a server
 * that dies between the first and the last leaves a Secret no Pod owns. The grace covers a create
 * that is still in flight in another process of this instance (a restart overlapping its
 * predecessor); the creating process itself never loses one of its own ({@link OrphanSecretSweep.inFlight}).
 */
export const ORPHAN_SECRET_GRACE_MS = 10_000;

/** How often the sweep runs after the one at start, in milliseconds. */
export const ORPHAN_SECRET_SWEEP_INTERVAL_MS = 5 * 60_000;

/** What a sweep needs to know about this server's containers. */
export interface OrphanSecretSweepOptions {
  /** This server's instance label value: a sweep touches only its own Secrets. */
  instance: string;
  /** Whether the container of this id has a Pod now (from the synced Pod watch). */
  hasPod(id: string): boolean;
  /** Minimum age of a deleted Secret (default {@link ORPHAN_SECRET_GRACE_MS}). */
  graceMs?: number;
  /** The clock, in epoch milliseconds (default `Date.now`). */
  now?: () => number;
}

/**
 * Finds and deletes containers' Secrets that no Pod owns and whose container has no Pod: the
 * leftovers of a server that crashed between creating a container's Secret and its Pod. A Secret
 * with an owner is left to Kubernetes' garbage collector; a Secret whose container is being created
 * in this process ({@link inFlight}) or that is younger than the grace period is left alone.
 * Deletion is conditional on the Secret's uid, so a Secret recreated meanwhile is never deleted.
 * Secret values are never read into a log or an error (requests are redacted).
 */
export class OrphanSecretSweep {
  /** Ids of containers whose Secret exists and whose Pod may not yet: never swept. */
  readonly inFlight = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<string[]> | undefined;

  constructor(
    private readonly core: CoreV1Api,
    private readonly log: Logger,
    private readonly options: OrphanSecretSweepOptions,
  ) {}

  /** One sweep now: returns `namespace/name` of the Secrets it deleted. Never runs twice at once. */
  sweep(): Promise<string[]> {
    this.#running ??= this.#sweep().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Sweeps every `intervalMs` (default {@link ORPHAN_SECRET_SWEEP_INTERVAL_MS}) until {@link close}. */
  start(intervalMs: number = ORPHAN_SECRET_SWEEP_INTERVAL_MS): void {
    this.#timer ??= setInterval(() => {
      this.sweep().catch((err: unknown) =>
        this.log.warn({ error: ChalkError.from(err).message }, "cannot sweep orphan Secrets"),
      );
    }, intervalMs).unref();
  }

  /** Stops the periodic sweep and waits for one in progress. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  async #sweep(): Promise<string[]> {
    const { instance, hasPod } = this.options;
    const grace = this.options.graceMs ?? ORPHAN_SECRET_GRACE_MS;
    const now = (this.options.now ?? Date.now)();
    const list = await withRetry(
      "listing containers' Secrets",
      () =>
        this.core.listSecretForAllNamespaces({
          labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY},${INSTANCE_LABEL}=${instance},${CONTAINER_ID_LABEL}`,
        }),
      { redact: true },
    );
    const deleted: string[] = [];
    for (const secret of list.items) {
      if (!isOrphan(secret, now, grace, (id) => hasPod(id) || this.inFlight.has(id))) continue;
      const { name, namespace, uid } = secret.metadata!;
      try {
        await withRetry(
          `deleting orphan Secret ${namespace}/${name}`,
          () =>
            this.core.deleteNamespacedSecret({
              name: name!,
              namespace: namespace!,
              body: { preconditions: uid ? { uid } : {} },
            }),
          { redact: true },
        );
        deleted.push(`${namespace}/${name}`);
        this.log.info({ secret: `${namespace}/${name}` }, "deleted a Secret whose container has no Pod");
      } catch (err) {
        // Gone already, or recreated (the uid precondition fails with a conflict): nothing to do.
        const code = ChalkError.from(err).code;
        if (code !== Code.NotFound && code !== Code.Aborted && code !== Code.AlreadyExists) throw err;
      }
    }
    return deleted;
  }
}

/**
 * Whether a Secret is a container's leftover: it names a container, no object owns it, it is older
 * than `graceMs` at `now`, and `busy(id)` (the container has a Pod or is being created) is false.
 */
export function isOrphan(
  secret: V1Secret,
  now: number,
  graceMs: number,
  busy: (id: string) => boolean,
): boolean {
  const id = secret.metadata?.labels?.[CONTAINER_ID_LABEL];
  if (!id || !secret.metadata?.name || !secret.metadata.namespace) return false;
  if ((secret.metadata.ownerReferences ?? []).length > 0) return false;
  const created = secret.metadata.creationTimestamp
    ? new Date(secret.metadata.creationTimestamp).getTime()
    : Number.NaN;
  if (!Number.isFinite(created) || now - created < graceMs) return false;
  return !busy(id);
}
