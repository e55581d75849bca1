import { type CoreV1Api, type KubeConfig, makeInformer, type V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { CONTAINER_ID_LABEL, INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL } from "./kubernetes-names.js";

/** Wait before the first restart of a broken watch, in milliseconds. */
const RESTART_DELAY_MS = 1000;
/** Longest wait between restarts, in milliseconds, however long the API server stays away. */
const MAX_RESTART_DELAY_MS = 30_000;

/**
 * How long to wait, in milliseconds, before starting a watch that broke `failures` times in a row
 * (1 or more): 1 s, doubled at each further break, at most 30 s. A server whose API server is gone
 * (or whose credentials it no longer takes) retries 2 times a minute, not 60, and logs as often.
 */
export function restartDelayMs(failures: number): number {
  return Math.min(MAX_RESTART_DELAY_MS, RESTART_DELAY_MS * 2 ** Math.max(0, failures - 1));
}

/** A change to one Pod: its new state, or undefined once it is deleted. */
export type PodListener = (pod: V1Pod | undefined) => void;

/**
 * Every Pod the server made, in every namespace, kept current by one informer (a list, then a
 * watch from its resourceVersion; on a broken watch it lists and watches again after a backoff,
 * so no change is lost while disconnected). Containers read their status from here and wait on it;
 * nothing polls the API server.
 */
export class PodWatch {
  readonly #pods = new Map<string, V1Pod>();
  readonly #listeners = new Map<string, Set<PodListener>>();
  readonly #informer;
  #closed = false;
  /** True while {@link interrupt} holds the watch down (its stop is not a failure to recover from). */
  #paused = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #synced: Promise<void>;
  /** Watch events seen (add, update, delete), for the benchmark. */
  events = 0;
  /** Times the watch broke and was started again. */
  restarts = 0;
  /** Breaks since the watch last listed successfully: they set the wait before the next start. */
  #failures = 0;

  constructor(
    kc: KubeConfig,
    core: CoreV1Api,
    private readonly log: Logger,
    /** This server's instance label value: the watch sees only its own Pods. */
    instance: string,
  ) {
    const selector = `${MANAGED_BY_LABEL}=${MANAGED_BY},${INSTANCE_LABEL}=${instance}`;
    this.#informer = makeInformer<V1Pod>(
      kc,
      "/api/v1/pods",
      () => core.listPodForAllNamespaces({ labelSelector: selector }),
      selector,
    );
    const seen = (pod: V1Pod) => {
      this.events++;
      const id = pod.metadata?.labels?.[CONTAINER_ID_LABEL];
      if (!id) return;
      this.#pods.set(id, pod);
      this.#notify(id, pod);
    };
    this.#informer.on("add", seen);
    this.#informer.on("update", seen);
    this.#informer.on("delete", (pod) => {
      this.events++;
      const id = pod.metadata?.labels?.[CONTAINER_ID_LABEL];
      if (!id) return;
      // A Pod of the same id recreated meanwhile is not this one.
      const current = this.#pods.get(id);
      if (current && current.metadata?.uid !== pod.metadata?.uid) return;
      this.#pods.delete(id);
      this.#notify(id, undefined);
    });
    this.#informer.on("error", (err: unknown) => {
      if (this.#closed || this.#paused) return;
      this.restarts++;
      this.#failures++;
      const retryInMs = restartDelayMs(this.#failures);
      this.log.warn(
        { error: String((err as Error)?.message ?? err), failures: this.#failures, retryInMs },
        "Pod watch broke; starting it again",
      );
      clearTimeout(this.#restartTimer);
      this.#restartTimer = setTimeout(() => {
        // A start that lists again is a recovery: the next break waits the shortest time again.
        this.#synced = this.#informer.start().then(
          () => {
            this.#failures = 0;
          },
          () => undefined,
        );
      }, retryInMs);
      this.#restartTimer.unref();
    });
    this.#synced = this.#informer.start();
  }

  /** Resolves once the first list arrived (rejects when the API server cannot be reached). */
  synced(): Promise<void> {
    return this.#synced;
  }

  /** The latest state of a container's Pod, or undefined when there is none. */
  get(id: string): V1Pod | undefined {
    return this.#pods.get(id);
  }

  /** The ids of every container Pod seen. */
  ids(): string[] {
    return [...this.#pods.keys()];
  }

  /** Calls `listener` at every change of a container's Pod until the returned function is called. */
  subscribe(id: string, listener: PodListener): () => void {
    let set = this.#listeners.get(id);
    if (!set) {
      set = new Set();
      this.#listeners.set(id, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#listeners.delete(id);
    };
  }

  /**
   * Resolves with the first value `decide` returns for the Pod's state (checked now and at every
   * change), or rejects with `signal`'s reason.
   */
  until<T>(id: string, decide: (pod: V1Pod | undefined) => T | undefined, signal?: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let off: () => void = () => undefined;
      const onAbort = () => {
        off();
        reject(signal?.reason);
      };
      const check = (pod: V1Pod | undefined) => {
        let v: T | undefined;
        try {
          v = decide(pod);
        } catch (err) {
          // A decision that the wait has failed (the Pod can never run) rejects it.
          off();
          signal?.removeEventListener("abort", onAbort);
          reject(err);
          return;
        }
        if (v === undefined) return;
        off();
        signal?.removeEventListener("abort", onAbort);
        resolve(v);
      };
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      off = this.subscribe(id, check);
      signal?.addEventListener("abort", onAbort, { once: true });
      check(this.#pods.get(id));
    });
  }

  /** Records a Pod the backend just created or read (the watch will confirm it). */
  remember(pod: V1Pod): void {
    const id = pod.metadata?.labels?.[CONTAINER_ID_LABEL];
    if (id && !this.#pods.has(id)) this.#pods.set(id, pod);
  }

  /**
   * Breaks the watch as a lost connection would, runs `during` while it is down (changes the watch
   * cannot see as they happen), and starts it again: it lists anew and reports what changed.
   */
  async interrupt(during: () => Promise<void> = async () => undefined): Promise<void> {
    this.#paused = true;
    clearTimeout(this.#restartTimer);
    await this.#informer.stop();
    this.restarts++;
    try {
      await during();
    } finally {
      this.#paused = false;
      this.#synced = this.#informer.start();
    }
    await this.#synced;
  }

  #notify(id: string, pod: V1Pod | undefined): void {
    for (const l of [...(this.#listeners.get(id) ?? [])]) l(pod);
  }

  /** Stops watching. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#restartTimer);
    await this.#informer.stop();
  }
}
