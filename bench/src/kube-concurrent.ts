/**
 * N containers created at once on the Kubernetes backend, and its raw floor: N Pods in one
 * multi-document `kubectl apply`, then `kubectl wait --for=condition=Ready` on them all. Each side
 * is timed to all Running, and counted: the API requests its client sent (the server's on-the-wire
 * counter; kubectl's own `-v=6` response lines), every request the API server served meanwhile
 * (its `apiserver_request_total`, all clients: also the kubelet, scheduler and controllers), and the
 * watch events its client received (the server's informer; one `kubectl get pods --watch`).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Container } from "@chalk/container";
import type { Transport } from "@chalk/rpc";
import type { TestCluster } from "@chalk/test-cluster";
import { apiServerRequests, type PodResources, type RawKubectl, serverKubeCounters } from "./kube-floor.js";

/** What one side of one round measured; counts are per container. */
export interface ConcurrentSample {
  /** From the first create to the last one Running (ms). */
  allRunningMs: number;
  /** Requests the client sent until all were Running. */
  clientRequests: number;
  /** Requests the client sent over the whole lifecycle: create, Running, stop and deletion. */
  clientRequestsThroughStop: number;
  /** Requests the API server served (all clients) until all were Running. */
  apiServerRequests: number;
  /** The same through stop and deletion. */
  apiServerRequestsThroughStop: number;
  /** Watch events the client received until all were Running. */
  watchEvents: number;
}

/** Creates `n` containers at once through the SDK (`new Container(...).run()` each), then stops them all. */
export async function concurrentSdk(opts: {
  n: number;
  round: number;
  image: string;
  transport: Transport;
  cpu: string;
  memory: string;
  /** The Kubernetes server's `/metrics` text. */
  scrapeMetrics: () => Promise<string>;
  cluster: TestCluster;
}): Promise<ConcurrentSample> {
  const { n } = opts;
  const before = serverKubeCounters(await opts.scrapeMetrics());
  const beforeApi = await apiServerRequests(opts.cluster);
  const t = performance.now();
  const settled = await Promise.allSettled(
    Array.from({ length: n }, (_, i) =>
      new Container({
        image: opts.image,
        name: `bench-many-${opts.round}-${i}`,
        transport: opts.transport,
        cpu: opts.cpu,
        memory: opts.memory,
      }).run(),
    ),
  );
  const allRunningMs = performance.now() - t;
  const running = serverKubeCounters(await opts.scrapeMetrics());
  const runningApi = await apiServerRequests(opts.cluster);
  const started = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const stopped = await Promise.allSettled(started.map((c) => c.stop()));
  const after = serverKubeCounters(await opts.scrapeMetrics());
  const afterApi = await apiServerRequests(opts.cluster);
  const failed = [...settled, ...stopped].filter((s) => s.status === "rejected");
  if (failed.length > 0) {
    throw new Error(
      `${failed.length} of ${n} concurrent runs or stops failed; the first: ${String((failed[0] as PromiseRejectedResult).reason)}`,
    );
  }
  return {
    allRunningMs,
    clientRequests: (running.apiRequests - before.apiRequests) / n,
    clientRequestsThroughStop: (after.apiRequests - before.apiRequests) / n,
    apiServerRequests: (runningApi - beforeApi) / n,
    apiServerRequestsThroughStop: (afterApi - beforeApi) / n,
    watchEvents: (running.watchEvents - before.watchEvents) / n,
  };
}

/** `n` Pods in one `kubectl apply` of a List, `kubectl wait` until all are Ready, then one `kubectl delete`. */
export async function concurrentKubectl(opts: {
  n: number;
  round: number;
  raw: RawKubectl;
  resources: PodResources;
}): Promise<ConcurrentSample> {
  const { n, raw } = opts;
  const group = `many-${opts.round}`;
  const names = Array.from({ length: n }, (_, i) => `raw-many-${opts.round}-${i}`);
  const watch = raw.watchEvents();
  try {
    // Let the watch connect before anything happens.
    await sleep(1000);
    const beforeApi = await apiServerRequests(raw.cluster);
    raw.counting = true;
    raw.requests = 0;
    let runningRequests = 0;
    let allRunningMs = 0;
    let runningApi = 0;
    let watchEvents = 0;
    try {
      const t = performance.now();
      await raw.apply(names, group, opts.resources);
      await raw.waitReady({ group });
      allRunningMs = performance.now() - t;
      runningRequests = raw.requests;
      watchEvents = watch.count();
      runningApi = await apiServerRequests(raw.cluster);
      await raw.delete({ group });
    } finally {
      raw.counting = false;
    }
    const afterApi = await apiServerRequests(raw.cluster);
    return {
      allRunningMs,
      clientRequests: runningRequests / n,
      clientRequestsThroughStop: raw.requests / n,
      apiServerRequests: (runningApi - beforeApi) / n,
      apiServerRequestsThroughStop: (afterApi - beforeApi) / n,
      watchEvents: watchEvents / n,
    };
  } finally {
    watch.stop();
  }
}
