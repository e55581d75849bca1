/**
 * What only the Kubernetes backend has, on the real test cluster (Pods in gVisor): the Pod a
 * container becomes, field by field and without a secret value; its Secret and Service owned by
 * it and gone after stop(); OOMKilled and ImagePullBackOff as readable reasons; environments with
 * `.` and `_` isolated in namespaces of their own; one name claimed once under a race; history
 * kept in the server's store after the Pod is gone.
 */
import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { ensureCluster, kubectl, pushTestImage, type TestCluster } from "@chalk/test-cluster";
import { beforeAll, describe, expect } from "vitest";
import { ChalkError, Code, Container, Secret, Secrets } from "../src/index.js";
import { containerTest, useServer } from "./fixtures.js";

const ENVIRONMENTS = ["default", "k8s.team_a", "k8s.team-a"];
const ctx = useServer(["--metrics-listen", "127.0.0.1:0"], {
  backend: "kubernetes",
  environments: ENVIRONMENTS,
});
const test = containerTest(() => ctx.server);
const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await ensureCluster();
});

async function getJson<T>(args: string[]): Promise<T> {
  return JSON.parse(await kubectl(cluster, [...args, "-o", "json"])) as T;
}

/** Names of the objects of a kind in a namespace that belong to a container. */
async function owned(kind: string, namespace: string, id: string): Promise<string[]> {
  const list = await getJson<{ items: { metadata: { name: string } }[] }>([
    "get",
    kind,
    "-n",
    namespace,
    "-l",
    `chalk.dev/container-id=${id}`,
  ]);
  return list.items.map((i) => i.metadata.name);
}

async function errorOf(p: Promise<unknown>): Promise<ChalkError> {
  try {
    await p;
  } catch (err) {
    return ChalkError.from(err);
  }
  throw new Error("expected an error");
}

describe("a container is a Pod", () => {
  test("the Pod field by field; its Secret holds the values, owned by the Pod; stop leaves nothing", async ({
    run,
  }) => {
    const t = ctx.server.transport();
    await Secrets.set("K8S_TEST_KEY", "sk-k8s-value-7", { transport: t });
    const local = Secret.fromLocalEnv("RUN_TOKEN", { env: { RUN_TOKEN: "local-k8s-token-8" } });
    const c = await run({
      image: ctx.image,
      name: unique("podspec"),
      cpu: "250m",
      memory: "256Mi",
      env: { MODE: "test" },
      secrets: [Secret.fromEnv("K8S_TEST_KEY"), local],
      port: 8080,
      entrypoint: ["sh", "-c", "echo started; exec sleep 3600"],
    });
    const ns = ctx.namespaceOf("default");
    const pod = await getJson<{
      metadata: { name: string; labels: Record<string, string>; uid: string };
      spec: {
        runtimeClassName: string;
        shareProcessNamespace: boolean;
        automountServiceAccountToken: boolean;
        restartPolicy: string;
        containers: {
          image: string;
          command: string[];
          env: {
            name: string;
            value?: string;
            valueFrom?: { secretKeyRef: { name: string; key: string } };
          }[];
          resources: unknown;
        }[];
      };
    }>(["get", "pod", "-n", ns, `c-${c.id}`]);
    expect(pod.metadata.labels).toMatchObject({
      "app.kubernetes.io/managed-by": "chalk",
      "chalk.dev/container-id": c.id,
    });
    expect(pod.spec.runtimeClassName).toBe("gvisor");
    // The Pod's pause process is PID 1 and reaps orphans (the local backend's tini).
    expect(pod.spec.shareProcessNamespace).toBe(true);
    expect(pod.spec.automountServiceAccountToken).toBe(false);
    expect(pod.spec.restartPolicy).toBe("Never");
    const main = pod.spec.containers[0]!;
    expect(main.image).toMatch(/^10\.214\.0\.1:5000\/test\/minbase@sha256:[0-9a-f]{64}$/);
    expect(main.command).toEqual(["sh", "-c", "echo started; exec sleep 3600"]);
    // The test servers request a tenth of the CPU limit (--cpu-request-percent 10); memory in full.
    expect(main.resources).toEqual({
      // The server's default disk limit (--default-disk 10Gi) is the Pod's ephemeral storage.
      requests: { cpu: "25m", memory: String(256 * 2 ** 20), "ephemeral-storage": String(10 * 2 ** 30) },
      limits: { cpu: "250m", memory: String(256 * 2 ** 20), "ephemeral-storage": String(10 * 2 ** 30) },
    });
    expect(main.env.find((e) => e.name === "MODE")).toEqual({ name: "MODE", value: "test" });
    for (const name of ["K8S_TEST_KEY", "RUN_TOKEN"]) {
      expect(main.env.find((e) => e.name === name)?.valueFrom?.secretKeyRef.name).toBe(`c-${c.id}-env`);
    }
    // No secret value is in the Pod (nor in anything the API serves about it but the Secret).
    const podText = await kubectl(cluster, ["get", "pod", "-n", ns, `c-${c.id}`, "-o", "json"]);
    for (const v of ["sk-k8s-value-7", "local-k8s-token-8"]) {
      expect(podText).not.toContain(v);
      expect(podText).not.toContain(Buffer.from(v).toString("base64"));
    }
    const secret = await getJson<{ metadata: { ownerReferences: { kind: string; uid: string }[] } }>([
      "get",
      "secret",
      "-n",
      ns,
      `c-${c.id}-env`,
    ]);
    expect(secret.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: "Pod", uid: pod.metadata.uid }),
    ]);
    const svc = await getJson<{
      spec: { type: string; clusterIP: string; ports: { port: number }[] };
      metadata: { ownerReferences: { uid: string }[] };
    }>(["get", "service", "-n", ns, `c-${c.id}`]);
    expect(svc.spec.type).toBe("ClusterIP");
    expect(svc.metadata.ownerReferences[0]?.uid).toBe(pod.metadata.uid);
    expect(c.info.address).toBe(`${svc.spec.clusterIP}:8080`);
    expect((await c.exec("sh", "-c", 'printf %s "$K8S_TEST_KEY"')).stdoutText).toBe("sk-k8s-value-7");

    await c.stop({ gracePeriodSeconds: 1 });
    for (const kind of ["pod", "secret", "service"]) expect(await owned(kind, ns, c.id)).toEqual([]);
    // History stays in the server's store: the record and the log of a Pod that no longer exists.
    const again = await Container.fromId(c.id, { transport: t });
    expect(again.info.status).toBe("Stopped");
    expect(await again.logs()).toContain("started\n");
    const logs = ctx.server.logs.join("\n");
    for (const v of ["sk-k8s-value-7", "local-k8s-token-8"]) expect(logs).not.toContain(v);
  });
});

describe("Secrets a crash left behind", () => {
  test("a container's Secret without a Pod (a crash between the two creates) is deleted at start; a live container's Secret stays", async ({
    run,
  }) => {
    const t = ctx.server.transport();
    await Secrets.set("K8S_SWEEP_KEY", "sk-sweep-value-9", { transport: t });
    const live = await run({
      image: ctx.image,
      name: unique("sweep-live"),
      secrets: [Secret.fromEnv("K8S_SWEEP_KEY")],
    });
    const ns = ctx.namespaceOf("default");
    const liveSecret = await getJson<{ metadata: { labels: Record<string, string> } }>([
      "get",
      "secret",
      "-n",
      ns,
      `c-${live.id}-env`,
    ]);
    // What a server that died after creating a container's Secret and before its Pod leaves: a
    // Secret with this server's labels, of a container id that has no Pod, owned by nothing.
    const ghost = `ghost${Math.random().toString(36).slice(2, 10)}`;
    const labels = { ...liveSecret.metadata.labels, "chalk.dev/container-id": ghost };
    await kubectl(cluster, [
      "create",
      "secret",
      "generic",
      "-n",
      ns,
      `c-${ghost}-env`,
      "--from-literal=K8S_SWEEP_KEY=left-behind",
    ]);
    await kubectl(cluster, [
      "label",
      "secret",
      "-n",
      ns,
      `c-${ghost}-env`,
      ...Object.entries(labels).map(([k, v]) => `${k}=${v}`),
    ]);
    // Older than the sweep's grace period (10 s), then a server start.
    await new Promise((r) => setTimeout(r, 11_000));
    await ctx.server.kill("SIGKILL");
    await ctx.server.restart();
    let left = await owned("secret", ns, ghost);
    for (let i = 0; i < 120 && left.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
      left = await owned("secret", ns, ghost);
    }
    expect(left).toEqual([]);
    expect(await owned("secret", ns, live.id)).toEqual([`c-${live.id}-env`]);
    const again = await Container.fromId(live.id, { transport: ctx.server.transport() });
    expect((await again.exec("sh", "-c", 'printf %s "$K8S_SWEEP_KEY"')).stdoutText).toBe("sk-sweep-value-9");
    expect(ctx.server.logs.join("\n")).not.toContain("left-behind");
  });
});

describe("statuses with Kubernetes' reasons", () => {
  test("an entrypoint over its memory limit ends Failed with OOMKilled", async () => {
    const name = unique("oom");
    const t = { transport: ctx.server.transport() };
    // run() reports the kill when it comes within the start's settle time, else Running: both are
    // true; what matters is the status the container ends with.
    await new Container({
      image: ctx.image,
      name,
      memory: "128Mi",
      entrypoint: ["sh", "-c", "perl -e '$x = q(a) x (512 * 1024 * 1024); sleep 30'"],
      ...t,
    })
      .run()
      .catch(() => undefined);
    let c = await Container.fromName(name, t);
    for (let i = 0; i < 240 && (c.info.status === "Running" || c.info.status === "Pending"); i++) {
      await new Promise((r) => setTimeout(r, 250));
      c = await Container.fromName(name, t);
    }
    expect(c.info.status).toBe("Failed");
    expect(c.info.statusMessage).toMatch(
      /out of memory: the entrypoint used more than the container's 128 MiB/,
    );
    expect(await owned("pod", ctx.namespaceOf("default"), c.id)).toEqual([]);
  });

  test("an image the node cannot pull fails run() with ImagePullBackOff, leaving no Pod", async () => {
    // An image whose manifest and config the server reads, but whose layer is gone from the
    // registry: the node's pull fails.
    const image = await pushTestImage(cluster, {
      repository: "test/broken",
      files: { "/unique": `${Date.now()}-${Math.random()}` },
    });
    const manifest = JSON.parse(
      (await command([
        "skopeo",
        "inspect",
        "--raw",
        "--tls-verify=false",
        `docker://${image.digestReference}`,
      ])) || "{}",
    ) as { layers: { digest: string }[] };
    const hex = manifest.layers[0]!.digest.slice("sha256:".length);
    await rm(join(cluster.stateDir, "registry/docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex), {
      recursive: true,
      force: true,
    });
    const name = unique("nopull");
    const err = await errorOf(
      new Container({ image: image.digestReference, name, transport: ctx.server.transport() }).run(),
    );
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toMatch(/ImagePullBackOff|ErrImagePull/);
    const c = await Container.fromName(name, { transport: ctx.server.transport() });
    expect(c.info.status).toBe("Failed");
    expect(await owned("pod", ctx.namespaceOf("default"), c.id)).toEqual([]);
  });
});

describe("environments and names", () => {
  test("environments with `.`, `_` and `-` get namespaces of their own and see only their containers", async ({
    run,
  }) => {
    const a = await run({ image: ctx.image, name: "same-name" }, "k8s.team_a");
    const b = await run({ image: ctx.image, name: "same-name" }, "k8s.team-a");
    expect(await owned("pod", ctx.namespaceOf("k8s.team_a"), a.id)).toEqual([`c-${a.id}`]);
    expect(await owned("pod", ctx.namespaceOf("k8s.team-a"), b.id)).toEqual([`c-${b.id}`]);
    expect(ctx.namespaceOf("k8s.team_a")).not.toBe(ctx.namespaceOf("k8s.team-a"));
    const ns = await getJson<{ metadata: { annotations: Record<string, string> } }>([
      "get",
      "namespace",
      ctx.namespaceOf("k8s.team_a"),
    ]);
    expect(ns.metadata.annotations["chalk.dev/environment"]).toBe("k8s.team_a");
    const fromA = await Container.fromName("same-name", { transport: ctx.server.transport("k8s.team_a") });
    expect(fromA.id).toBe(a.id);
    await expect(
      Container.fromId(a.id, { transport: ctx.server.transport("k8s.team-a") }),
    ).rejects.toMatchObject({ code: Code.NotFound });
  });

  test("two concurrent run()s of one name: exactly one succeeds, the other is already_exists", async ({
    run,
  }) => {
    const name = unique("race");
    const results = await Promise.allSettled([
      run({ image: ctx.image, name }),
      run({ image: ctx.image, name }),
    ]);
    const ok = results.filter((r) => r.status === "fulfilled");
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(ok).toHaveLength(1);
    expect(failed).toHaveLength(1);
    expect(ChalkError.from(failed[0]!.reason).code).toBe(Code.AlreadyExists);
    const pods = await getJson<{ items: unknown[] }>([
      "get",
      "pods",
      "-n",
      ctx.namespaceOf("default"),
      "-l",
      "chalk.dev/role=container",
      "--field-selector=status.phase!=Succeeded",
    ]);
    expect(pods.items.length).toBeGreaterThanOrEqual(1);
  });
});

/** The server's Kubernetes counters from its `/metrics` (API requests by method, watch events). */
async function kubeMetrics(): Promise<{ requests: Record<string, number>; watchEvents: number }> {
  // The current start's: a test before this one restarts the server, which then listens anew.
  const text = await ctx.server.metricsText();
  const requests: Record<string, number> = {};
  let watchEvents = 0;
  for (const line of text.split("\n")) {
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    const method = /^chalk_kubernetes_api_requests_total\{method="([A-Z]+)"\}/.exec(line)?.[1];
    if (method) requests[method] = value;
    if (line.startsWith("chalk_kubernetes_watch_events_total ")) watchEvents = value;
  }
  return { requests, watchEvents };
}

describe("the server's own Kubernetes metrics", () => {
  test("/metrics counts the API requests the server sent and the Pod watch events it received over a container's life", async ({
    run,
  }) => {
    const before = await kubeMetrics();
    const c = await run({ image: ctx.image, name: unique("metrics") });
    expect((await c.exec("true")).exitCode).toBe(0);
    await c.stop();
    const after = await kubeMetrics();
    const grew = (method: string) => (after.requests[method] ?? 0) - (before.requests[method] ?? 0);
    // At least: the Pod's creation (POST), the exec's WebSocket upgrade (GET) and the Pod's deletion (DELETE).
    expect(grew("POST")).toBeGreaterThanOrEqual(1);
    expect(grew("GET")).toBeGreaterThanOrEqual(1);
    expect(grew("DELETE")).toBeGreaterThanOrEqual(1);
    // At least: the Pod added, then Running (run() waits for it on the watch), then deleted.
    expect(after.watchEvents - before.watchEvents).toBeGreaterThanOrEqual(3);
  });
});

/** Runs a command and returns its stdout (skopeo). */
async function command(argv: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(argv[0]!, argv.slice(1));
  return stdout;
}
