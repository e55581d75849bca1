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

describe("images come from the cluster's registry", () => {
  test("an image pushed to the registry is pulled by digest and runs", async () => {
    const marker = randomBytes(16).toString("hex");
    const image = await busyboxImage(cluster, { "/etc/marker": marker });
    expect(image.digestReference).toMatch(/^10\.214\.0\.1:5000\/test\/busybox@sha256:[0-9a-f]{64}$/);

    await using ns = await testNamespace(cluster, "registry");
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

    expect((await kubectl(cluster, ["-n", ns.name, "exec", "p", "--", "cat", "/etc/marker"])).trim()).toBe(
      marker,
    );
    const imageID = await kubectl(cluster, [
      "-n",
      ns.name,
      "get",
      "pod",
      "p",
      "-o",
      "jsonpath={.status.containerStatuses[0].imageID}",
    ]);
    expect(imageID).toBe(image.digestReference);
  });

  test("a digest the registry does not have ends in ErrImagePull or ImagePullBackOff", async () => {
    const missing = `${cluster.registry}/test/busybox@sha256:${"0".repeat(64)}`;
    await using ns = await testNamespace(cluster, "registry");
    await apply(
      cluster,
      podManifest({ namespace: ns.name, name: "p", image: missing, command: ["sleep", "1"] }),
    );
    const reason = await waitUntil("the Pod's image pull to fail", async () => {
      const r = await kubectl(cluster, [
        "-n",
        ns.name,
        "get",
        "pod",
        "p",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.waiting.reason}",
      ]);
      return r === "ErrImagePull" || r === "ImagePullBackOff" ? r : undefined;
    });
    expect(["ErrImagePull", "ImagePullBackOff"]).toContain(reason);
  });
});
