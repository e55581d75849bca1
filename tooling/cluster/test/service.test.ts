import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, test } from "vitest";
import {
  apply,
  kubectl,
  type TestCluster,
  testNamespace,
  waitForPodRunning,
  waitUntil,
} from "../src/index.js";
import { busyboxImage, podManifest, useCluster } from "./fixtures.js";

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await useCluster();
});

/** GETs a URL with a short timeout; resolves to the body, or undefined when it cannot connect. */
async function get(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}

describe("Services", () => {
  test("a ClusterIP Service answers from the node through kube-proxy, and from another Pod", async () => {
    const body = randomBytes(12).toString("hex");
    const image = await busyboxImage(cluster, { "/www/index.html": body });
    await using ns = await testNamespace(cluster, "service");
    await apply(
      cluster,
      podManifest({
        namespace: ns.name,
        name: "web",
        image: image.digestReference,
        command: ["httpd", "-f", "-p", "8080", "-h", "/www"],
        labels: { app: "web" },
        port: 8080,
      }),
    );
    await apply(
      cluster,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Service",
        metadata: { namespace: ns.name, name: "web" },
        spec: { type: "ClusterIP", selector: { app: "web" }, ports: [{ port: 80, targetPort: 8080 }] },
      }),
    );
    await waitForPodRunning(cluster, ns.name, "web");
    const clusterIP = (
      await kubectl(cluster, ["-n", ns.name, "get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"])
    ).trim();
    expect(clusterIP).toMatch(/^10\.216\.0\.\d+$/);

    // kube-proxy programs the Service once the EndpointSlice has the ready Pod.
    const got = await waitUntil("the Service to answer", () => get(`http://${clusterIP}/`), {
      timeoutMs: 60_000,
    });
    expect(got).toBe(body);
  });

  test("a Pod reaches the API server through the kubernetes Service", async () => {
    const image = await busyboxImage(cluster);
    await using ns = await testNamespace(cluster, "apiservice");
    await apply(
      cluster,
      podManifest({
        namespace: ns.name,
        name: "p",
        image: image.digestReference,
        command: ["sleep", "3600"],
      }),
    );
    await waitForPodRunning(cluster, ns.name, "p");
    const kubernetesIP = (
      await kubectl(cluster, [
        "-n",
        "default",
        "get",
        "service",
        "kubernetes",
        "-o",
        "jsonpath={.spec.clusterIP}",
      ])
    ).trim();
    expect(kubernetesIP).toBe("10.216.0.1");
    // The TCP connection opens (kube-proxy: 10.216.0.1:443 -> 10.214.0.1:6443).
    const out = await kubectl(cluster, [
      "-n",
      ns.name,
      "exec",
      "p",
      "--",
      "sh",
      "-c",
      `nc -w 3 ${kubernetesIP} 443 </dev/null && echo connected`,
    ]);
    expect(out).toContain("connected");
  });
});
