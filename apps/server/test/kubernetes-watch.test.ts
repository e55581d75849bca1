/**
 * The Kubernetes backend's Pod watch on the real test cluster: status transitions arrive through
 * the informer, and a watch that is broken mid-test (as a lost connection breaks it) and resumed
 * reports what changed while it was down: a Pod that ended, and one that was deleted.
 */
import { ensureCluster, kubectl, pushTestImage, type TestCluster, testNamespace } from "@chalk/test-cluster";
import { CoreV1Api, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import pino from "pino";
import { beforeAll, describe, expect, test } from "vitest";
import {
  CONTAINER_ID_LABEL,
  INSTANCE_LABEL,
  MANAGED_BY,
  MANAGED_BY_LABEL,
} from "../src/kubernetes/kubernetes-names.js";
import { podProgress } from "../src/kubernetes/pod-status.js";
import { PodWatch } from "../src/kubernetes/pod-watch.js";

let cluster: TestCluster;
let image: string;

beforeAll(async () => {
  cluster = await ensureCluster();
  image = (await pushTestImage(cluster, { repository: "test/watch" })).digestReference;
});

function pod(namespace: string, id: string, instance: string, command: string[]): V1Pod {
  return {
    metadata: {
      name: `c-${id}`,
      namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [INSTANCE_LABEL]: instance, [CONTAINER_ID_LABEL]: id },
    },
    spec: {
      runtimeClassName: "gvisor",
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 0,
      containers: [{ name: "main", image, command }],
    },
  };
}

describe("the Pod watch", () => {
  test("transitions arrive through the watch, and changes made while it was broken are seen after it resumes", async () => {
    await using ns = await testNamespace(cluster, "watch");
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    const instance = `w${Math.random().toString(36).slice(2, 8)}`;
    const watch = new PodWatch(kc, core, pino({ level: "silent" }), instance);
    try {
      await watch.synced();
      const long = `long-${instance}`;
      const short = `short-${instance}`;
      await core.createNamespacedPod({
        namespace: ns.name,
        body: pod(ns.name, long, instance, ["sleep", "3600"]),
      });
      const running = await watch.until(
        long,
        (p) => (p && podProgress(p).state === "running" ? true : undefined),
        AbortSignal.timeout(120_000),
      );
      expect(running).toBe(true);

      // While the watch is down: one Pod is created and exits 7, the other is deleted.
      const eventsBefore = watch.events;
      await watch.interrupt(async () => {
        await core.createNamespacedPod({
          namespace: ns.name,
          body: pod(ns.name, short, instance, ["sh", "-c", "exit 7"]),
        });
        await kubectl(cluster, [
          "wait",
          "-n",
          ns.name,
          "--for=jsonpath={.status.phase}=Failed",
          `pod/c-${short}`,
          "--timeout=120s",
        ]);
        await kubectl(cluster, [
          "delete",
          "pod",
          "-n",
          ns.name,
          `c-${long}`,
          "--grace-period=0",
          "--wait=true",
        ]);
      });
      expect(watch.restarts).toBe(1);
      const exit = await watch.until(
        short,
        (p) => {
          const s = p ? podProgress(p) : undefined;
          return s?.state === "terminated" ? s.exit : undefined;
        },
        AbortSignal.timeout(60_000),
      );
      expect(exit.exitCode).toBe(7);
      await watch.until(long, (p) => (p ? undefined : true), AbortSignal.timeout(60_000));
      expect(watch.get(long)).toBeUndefined();
      expect(watch.events).toBeGreaterThan(eventsBefore);
      // Pods of another instance (another server on the cluster) are never seen.
      expect(watch.ids().every((id) => id.endsWith(instance))).toBe(true);
    } finally {
      await watch.close();
    }
  });
});
