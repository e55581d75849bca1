import { ChalkError, Code } from "@chalk/core";
import { describe, expect, test } from "vitest";
import { parseClusterEnv } from "./cluster.js";

const full = [
  "KUBECONFIG=/var/lib/chalk-cluster/admin.kubeconfig",
  "CHALK_CLUSTER_REGISTRY=10.214.0.1:5000",
  "CHALK_CLUSTER_NODE_IP=10.214.0.1",
  "CHALK_CLUSTER_NODE_NAME=chalk-node",
  "CHALK_CLUSTER_RUNTIME_CLASS=gvisor",
  "CHALK_CLUSTER_POD_CIDR=10.215.0.0/24",
  "CHALK_CLUSTER_SERVICE_CIDR=10.216.0.0/24",
  "CHALK_CLUSTER_STATE=/var/lib/chalk-cluster",
  "CHALK_CLUSTER_KUBECTL=/run/chalk-cluster/bin/kubectl",
  "CHALK_CLUSTER_ETCDCTL=/run/chalk-cluster/bin/etcdctl",
  "CHALK_CLUSTER_RUNSC=/run/chalk-cluster/bin/runsc",
  "CHALK_CLUSTER_RUNSC_ROOT=/run/chalk-cluster/runsc/k8s.io",
];

describe("parseClusterEnv", () => {
  test("reads every field of cluster.sh's env lines and ignores other output", () => {
    const c = parseClusterEnv(["[cluster] already up", ...full, "trailing noise", ""].join("\n"));
    expect(c).toEqual({
      kubeconfig: "/var/lib/chalk-cluster/admin.kubeconfig",
      registry: "10.214.0.1:5000",
      nodeAddress: "10.214.0.1",
      nodeName: "chalk-node",
      runtimeClassName: "gvisor",
      podCidr: "10.215.0.0/24",
      serviceCidr: "10.216.0.0/24",
      stateDir: "/var/lib/chalk-cluster",
      kubectl: "/run/chalk-cluster/bin/kubectl",
      etcdctl: "/run/chalk-cluster/bin/etcdctl",
      runsc: "/run/chalk-cluster/bin/runsc",
      runscRoot: "/run/chalk-cluster/runsc/k8s.io",
    });
  });

  test.each(full.map((l) => l.split("=")[0]!))("names the missing %s line", (key) => {
    const text = full.filter((l) => !l.startsWith(`${key}=`)).join("\n");
    try {
      parseClusterEnv(text);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ChalkError);
      expect((err as ChalkError).code).toBe(Code.FailedPrecondition);
      expect((err as ChalkError).message).toContain(`${key}=`);
    }
  });
});
