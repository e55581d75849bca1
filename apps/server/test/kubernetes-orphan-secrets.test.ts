/**
 * The orphan Secret sweep on the real test cluster: of this server's containers' Secrets, it
 * deletes exactly those that a crash left behind (owned by nothing, older than the grace period,
 * whose container has no Pod and is not being created), and never another server's Secret, one
 * owned by a Pod, one whose container has a Pod, one being created, or one younger than the grace.
 */
import { ensureCluster, type TestCluster, testNamespace } from "@chalk/test-cluster";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import pino from "pino";
import { beforeAll, describe, expect, test } from "vitest";
import {
  CONTAINER_ID_LABEL,
  INSTANCE_LABEL,
  MANAGED_BY,
  MANAGED_BY_LABEL,
} from "../src/kubernetes/kubernetes-names.js";
import { OrphanSecretSweep } from "../src/kubernetes/orphan-secrets.js";

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await ensureCluster();
});

describe("the orphan Secret sweep", () => {
  test("deletes only unowned, old-enough Secrets of this instance whose container has no Pod and is not being created", async () => {
    await using ns = await testNamespace(cluster, "sweep");
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    const instance = `s${Math.random().toString(36).slice(2, 8)}`;
    const labels = (id: string, inst = instance) => ({
      [MANAGED_BY_LABEL]: MANAGED_BY,
      [INSTANCE_LABEL]: inst,
      [CONTAINER_ID_LABEL]: id,
    });
    const make = async (id: string, inst = instance) =>
      core.createNamespacedSecret({
        namespace: ns.name,
        body: { metadata: { name: `c-${id}-env`, labels: labels(id, inst) }, stringData: { K: "v" } },
      });
    // An owner object for the owned Secret (a ConfigMap stands in for the Pod).
    const owner = await core.createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: "owner" } },
    });
    const ids = {
      orphan: `orphan-${instance}`,
      orphan2: `orphan2-${instance}`,
      withPod: `withpod-${instance}`,
      inFlight: `inflight-${instance}`,
      owned: `owned-${instance}`,
      otherServer: `other-${instance}`,
    };
    for (const id of [ids.orphan, ids.orphan2, ids.withPod, ids.inFlight]) await make(id);
    await make(ids.otherServer, `x${instance}`);
    await core.createNamespacedSecret({
      namespace: ns.name,
      body: {
        metadata: {
          name: `c-${ids.owned}-env`,
          labels: labels(ids.owned),
          ownerReferences: [
            { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata!.uid! },
          ],
        },
        stringData: { K: "v" },
      },
    });
    const names = async () =>
      (await core.listNamespacedSecret({ namespace: ns.name })).items
        .map((s) => s.metadata!.name!)
        .filter((n) => n.startsWith("c-"))
        .sort();
    const all = await names();
    expect(all).toHaveLength(6);

    // Within the grace period nothing goes.
    const young = new OrphanSecretSweep(core, pino({ level: "silent" }), {
      instance,
      hasPod: () => false,
      graceMs: 3_600_000,
    });
    expect(await young.sweep()).toEqual([]);
    expect(await names()).toEqual(all);

    const sweep = new OrphanSecretSweep(core, pino({ level: "silent" }), {
      instance,
      hasPod: (id) => id === ids.withPod,
      graceMs: 0,
    });
    sweep.inFlight.add(ids.inFlight);
    // Two sweeps at once are one sweep.
    const [a, b] = await Promise.all([sweep.sweep(), sweep.sweep()]);
    expect(a).toBe(b);
    expect([...a].sort()).toEqual(
      [`${ns.name}/c-${ids.orphan2}-env`, `${ns.name}/c-${ids.orphan}-env`].sort(),
    );
    expect(await names()).toEqual(
      [ids.withPod, ids.inFlight, ids.owned, ids.otherServer].map((id) => `c-${id}-env`).sort(),
    );
    // Once its create is over (the Pod now owns it or it was removed), an in-flight one is judged again.
    sweep.inFlight.delete(ids.inFlight);
    expect(await sweep.sweep()).toEqual([`${ns.name}/c-${ids.inFlight}-env`]);
    await sweep.close();
    await young.close();
  });
});
