import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import {
  apply,
  clusterHolders,
  clusterScript,
  ensureCluster,
  holderEnv,
  kubectl,
  runScript,
  testNamespace,
  waitForPodRunning,
  waitUntil,
} from "../src/index.js";
import { busyboxImage, podManifest } from "./fixtures.js";

const leakCheck = join(clusterScript, "..", "..", "scripts", "leak-check.sh");
/** The state lines that the cluster could change (on a shared machine, others change the rest). */
const clusterLines =
  "chalk-cluster|chalkk8s-|10\\.21[456]\\.|KUBE-|CNI-|kube|containerd|etcd|docker-registry|/var/lib/cni|/var/log/|nri|" +
  "ip_forward|route_localnet|bridge-nf|overcommit|panic|keys\\.root";

describe("the cluster's whole life", () => {
  test("up from nothing runs a gVisor Pod, and down leaves the machine as it was", async (ctx) => {
    const holder = Number(process.env[holderEnv]);
    const others = (await clusterHolders()).filter((h) => h !== String(holder));
    // The cluster is one per machine: with another holder (a developer's `cluster.sh up`, another
    // suite) this test cannot take it down. CI runs nothing else at the same time.
    ctx.skip(others.length > 0, `the cluster is held by ${others.join(", ")}`);

    await runScript("bash", [clusterScript, "down"], { timeoutMs: 180_000 });
    const dir = await mkdtemp(join(tmpdir(), "chalk-leaks-"));
    const env = { ...process.env, LEAK_CHECK_ONLY: clusterLines };
    const leaks = (mode: string) =>
      new Promise<{ code: number; out: string }>((resolve) => {
        execFile("bash", [leakCheck, mode, join(dir, "before")], { env }, (err, stdout, stderr) =>
          resolve({ code: err ? 1 : 0, out: stdout + stderr }),
        );
      });
    try {
      expect((await leaks("snapshot")).code).toBe(0);

      const cluster = await ensureCluster({ holderPid: holder });
      const node = await kubectl(cluster, [
        "get",
        "node",
        cluster.nodeName,
        "-o",
        "jsonpath={.status.nodeInfo}",
      ]);
      expect(JSON.parse(node)).toMatchObject({
        kubeletVersion: "v1.34.4",
        containerRuntimeVersion: "containerd://2.2.9",
      });

      const image = await busyboxImage(cluster);
      await apply(
        cluster,
        JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: "lifecycle" } }),
      );
      await waitUntil(
        "the default ServiceAccount",
        async () =>
          (await kubectl(cluster, ["-n", "lifecycle", "get", "sa", "default", "-o", "name"])).trim() ||
          undefined,
      );
      await apply(
        cluster,
        podManifest({
          namespace: "lifecycle",
          name: "p",
          image: image.digestReference,
          command: ["sleep", "3600"],
        }),
      );
      await waitForPodRunning(cluster, "lifecycle", "p");
      expect(await kubectl(cluster, ["-n", "lifecycle", "exec", "p", "--", "dmesg"])).toContain("gVisor");

      // A client of the cluster that is not one of its programs (a chalk-server started with
      // --kubeconfig, as the README shows) names the cluster's paths on its command line: down
      // must not kill it.
      const client = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", cluster.kubeconfig], {
        stdio: "ignore",
      });
      const clientExit = new Promise((resolve) => client.once("exit", resolve));
      try {
        // Down with the Pod still running: everything goes, its sandbox too.
        await runScript("bash", [clusterScript, "down"], { timeoutMs: 180_000 });
        expect(client.exitCode).toBeNull();
        expect(client.signalCode).toBeNull();
      } finally {
        client.kill("SIGKILL");
        await clientExit;
      }
      const after = await leaks("compare");
      expect(after.out).toContain("the machine is as the tests found it");
      expect(after.code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("up after a crash (containerd and the kubelet killed) replaces the broken cluster with a working one", async () => {
    const cluster = await ensureCluster();
    for (const name of ["containerd", "kubelet"]) {
      const [pid] = (await readFile(join("/run/chalk-cluster/pids", name), "utf8")).trim().split(" ");
      process.kill(Number(pid), "SIGKILL");
    }
    const again = await ensureCluster();
    expect(again).toEqual(cluster);
    const image = await busyboxImage(again);
    await using ns = await testNamespace(again, "crash");
    await apply(
      again,
      podManifest({
        namespace: ns.name,
        name: "p",
        image: image.digestReference,
        command: ["sleep", "3600"],
      }),
    );
    await waitForPodRunning(again, ns.name, "p");
    expect(await kubectl(again, ["-n", ns.name, "exec", "p", "--", "dmesg"])).toContain("gVisor");
  });
});
