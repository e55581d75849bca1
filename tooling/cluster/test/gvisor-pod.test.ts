import { beforeAll, describe, expect, test } from "vitest";
import { runScript } from "../src/cluster.js";
import {
  apply,
  kubectl,
  type PushedImage,
  type TestCluster,
  testNamespace,
  waitForPodRunning,
} from "../src/index.js";
import { busyboxImage, podManifest, useCluster } from "./fixtures.js";

let cluster: TestCluster;
let image: PushedImage;

beforeAll(async () => {
  cluster = await useCluster();
  image = await busyboxImage(cluster);
});

describe("Pods run in gVisor", () => {
  test.each([
    ["with runtimeClassName gvisor", "gvisor" as string | null],
    ["without a RuntimeClass (runsc is the node's only runtime)", null],
  ])("a Pod %s runs in a gVisor sandbox", async (_, runtimeClassName) => {
    await using ns = await testNamespace(cluster, "gvisor");
    await apply(
      cluster,
      podManifest({
        namespace: ns.name,
        name: "p",
        image: image.digestReference,
        command: ["sleep", "3600"],
        runtimeClassName,
      }),
    );
    await waitForPodRunning(cluster, ns.name, "p");

    // The kernel the Pod sees is gVisor's Sentry, not the host's.
    const dmesg = await kubectl(cluster, ["-n", ns.name, "exec", "p", "--", "dmesg"]);
    expect(dmesg).toContain("Starting gVisor");
    const version = await kubectl(cluster, ["-n", ns.name, "exec", "p", "--", "cat", "/proc/version"]);
    const { stdout: hostVersion } = await runScript("cat", ["/proc/version"]);
    expect(version.trim()).not.toBe(hostVersion.trim());

    // And on the host, the container is a runsc container under the cluster's own runsc root,
    // started through containerd's runsc shim.
    const id = (
      await kubectl(cluster, [
        "-n",
        ns.name,
        "get",
        "pod",
        "p",
        "-o",
        "jsonpath={.status.containerStatuses[0].containerID}",
      ])
    ).replace(/^containerd:\/\//, "");
    const { stdout: list } = await runScript(cluster.runsc, ["--root", cluster.runscRoot, "list", "-quiet"]);
    expect(list.split("\n")).toContain(id);
  });
});
