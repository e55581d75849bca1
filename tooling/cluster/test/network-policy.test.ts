import { beforeAll, describe, expect, test } from "vitest";
import {
  apply,
  type PushedImage,
  type TestCluster,
  testNamespace,
  tryKubectl,
  waitForPodRunning,
  waitUntil,
} from "../src/index.js";
import { busyboxImage, podManifest, useCluster } from "./fixtures.js";

let cluster: TestCluster;
let image: PushedImage;

beforeAll(async () => {
  cluster = await useCluster();
  image = await busyboxImage(cluster, { "/www/index.html": "hello from the server Pod" });
});

/**
 * Whether Pod `from` gets the server's page: an HTTP request with busybox nc inside gVisor, 2 s
 * timeout (busybox wget's own -T timeout crashes under gVisor).
 */
async function reaches(namespace: string, from: string, serverIP: string): Promise<boolean> {
  const r = await tryKubectl(cluster, [
    "-n",
    namespace,
    "exec",
    from,
    "--",
    "sh",
    "-c",
    `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${serverIP} 8080`,
  ]);
  return r.ok && r.stdout.includes("hello from the server Pod");
}

describe("NetworkPolicy is enforced (kube-network-policies)", () => {
  test("default-deny blocks Pod-to-Pod traffic and an allow policy re-opens it for the Pods it names", async () => {
    await using ns = await testNamespace(cluster, "netpol");
    const pod = (name: string, command: string[], app: string) =>
      apply(
        cluster,
        podManifest({
          namespace: ns.name,
          name,
          image: image.digestReference,
          command,
          labels: { app },
          port: 8080,
        }),
      );
    await pod("server", ["httpd", "-f", "-p", "8080", "-h", "/www"], "server");
    await pod("client", ["sleep", "3600"], "client");
    await pod("other", ["sleep", "3600"], "other");
    const serverIP = await waitForPodRunning(cluster, ns.name, "server");
    await waitForPodRunning(cluster, ns.name, "client");
    await waitForPodRunning(cluster, ns.name, "other");

    // No policy: everything reaches the server.
    await waitUntil("the client to reach the server", async () =>
      (await reaches(ns.name, "client", serverIP)) ? true : undefined,
    );
    expect(await reaches(ns.name, "other", serverIP)).toBe(true);

    // Default deny for ingress in the namespace.
    await apply(
      cluster,
      JSON.stringify({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { namespace: ns.name, name: "default-deny" },
        spec: { podSelector: {}, policyTypes: ["Ingress"] },
      }),
    );
    await waitUntil("default-deny to block the client", async () =>
      (await reaches(ns.name, "client", serverIP)) ? undefined : true,
    );
    expect(await reaches(ns.name, "other", serverIP)).toBe(false);

    // Allow the client Pods only, on the server's port.
    await apply(
      cluster,
      JSON.stringify({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { namespace: ns.name, name: "allow-client" },
        spec: {
          podSelector: { matchLabels: { app: "server" } },
          policyTypes: ["Ingress"],
          ingress: [{ from: [{ podSelector: { matchLabels: { app: "client" } } }], ports: [{ port: 8080 }] }],
        },
      }),
    );
    await waitUntil("the allow policy to re-open the server for the client", async () =>
      (await reaches(ns.name, "client", serverIP)) ? true : undefined,
    );
    expect(await reaches(ns.name, "other", serverIP)).toBe(false);
  });
});
