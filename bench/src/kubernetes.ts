/**
 * Containers on the Kubernetes backend (the test cluster: Pods in gVisor), through the real server
 * and the SDK, each figure as a ratio to raw `kubectl` measured in the same run, interleaved:
 *
 *   pnpm --filter @chalk/bench run bench:kubernetes
 *
 * - start: with the image in the node's cache, `new Container(...).run()` until Running plus the
 *   first `exec("true")`, vs `kubectl apply` of the same Pod (same image by digest, same
 *   RuntimeClass and resources), `kubectl wait --for=condition=Ready`, then `kubectl exec -- true`.
 * - exec: `c.exec("true")` round trip through the SDK, vs `kubectl exec POD -- true`.
 * Medians. Results go to stdout and bench/results/kubernetes.md. The watch events and API calls the
 * server made are not counted here (see what is left in the README).
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Container } from "@chalk/container";
import { namespaceOf, removeDataDir, startServerProcess } from "@chalk/server/testing";
import { ensureCluster, kubectl, pushRootfsImage, releaseCluster } from "@chalk/test-cluster";
import { median } from "./stats.js";

const START_RUNS = 7;
const EXEC_RUNS = 30;
const IMAGES_DIR = "/var/cache/chalk/images";
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const PREFIX = "bench-";

function rawPod(name: string, namespace: string, image: string): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace },
    spec: {
      runtimeClassName: "gvisor",
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 0,
      containers: [
        {
          name: "main",
          image,
          command: ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"],
          resources: { requests: { cpu: "100m", memory: "1Gi" }, limits: { cpu: "1", memory: "1Gi" } },
        },
      ],
    },
  });
}

async function main(): Promise<void> {
  const loadStart = loadavg()
    .map((x) => x.toFixed(1))
    .join(", ");
  const cluster = await ensureCluster();
  const rootfs = execFileSync("bash", [join(repoRoot, "tooling/scripts/rootfs.sh")], {
    encoding: "utf8",
  }).trim();
  const image = (
    await pushRootfsImage(cluster, { dir: rootfs, repository: "test/minbase", key: "bookworm-minbase" })
  ).digestReference;
  const server = await startServerProcess({
    args: [
      "--images-dir",
      IMAGES_DIR,
      "--backend",
      "kubernetes",
      "--kubeconfig",
      cluster.kubeconfig,
      "--registry",
      cluster.registry,
      "--registry-insecure",
      "--namespace-prefix",
      PREFIX,
      "--cpu-request-percent",
      "10",
    ],
  });
  const transport = server.transport();
  const ns = namespaceOf("default", PREFIX);
  const rawNs = `${PREFIX}raw`;
  const started: Container[] = [];
  try {
    const warm = await new Container({ image, name: "bench-warm", transport, cpu: "1", memory: "1Gi" }).run();
    started.push(warm);
    await warm.exec("true");
    await kubectl(cluster, ["create", "namespace", rawNs]);
    const apply = async (name: string) => {
      const file = join(server.dataDir, `${name}.json`);
      writeFileSync(file, rawPod(name, rawNs, image));
      await kubectl(cluster, ["apply", "-f", file]);
    };
    await apply("raw-warm");
    await kubectl(cluster, ["wait", "-n", rawNs, "--for=condition=Ready", "pod/raw-warm", "--timeout=120s"]);

    const floorStart: number[] = [];
    const floorExec: number[] = [];
    const startMs: number[] = [];
    const execMs: number[] = [];
    for (let i = 0; i < START_RUNS; i++) {
      let t = performance.now();
      await apply(`raw-${i}`);
      await kubectl(cluster, [
        "wait",
        "-n",
        rawNs,
        "--for=condition=Ready",
        `pod/raw-${i}`,
        "--timeout=120s",
      ]);
      await kubectl(cluster, ["exec", "-n", rawNs, `raw-${i}`, "--", "true"]);
      floorStart.push(performance.now() - t);
      await kubectl(cluster, ["delete", "pod", "-n", rawNs, `raw-${i}`, "--grace-period=0", "--wait=true"]);
      t = performance.now();
      const c = await new Container({
        image,
        name: `bench-start-${i}`,
        transport,
        cpu: "1",
        memory: "1Gi",
      }).run();
      started.push(c);
      await c.exec("true");
      startMs.push(performance.now() - t);
      await c.stop();
    }
    for (let i = 0; i < EXEC_RUNS; i++) {
      let t = performance.now();
      await kubectl(cluster, ["exec", "-n", rawNs, "raw-warm", "--", "true"]);
      floorExec.push(performance.now() - t);
      t = performance.now();
      await warm.exec("true");
      execMs.push(performance.now() - t);
    }
    const rows = [
      [
        "run() to Running + first exec",
        START_RUNS,
        median(startMs),
        "`kubectl apply` + `wait Ready` + `exec true`",
        median(floorStart),
      ],
      ['exec("true") round trip', EXEC_RUNS, median(execMs), "`kubectl exec POD -- true`", median(floorExec)],
    ] as const;
    const table = [
      "| measure | raw floor (median) | SDK on `--backend kubernetes` (median) | ratio |",
      "|---|---|---|---|",
      ...rows.map(
        ([what, n, ms, floorName, floor]) =>
          `| ${what} (${n} runs) | ${floorName} ${floor.toFixed(0)} ms | ${ms.toFixed(0)} ms | ${(ms / floor).toFixed(2)}× |`,
      ),
    ].join("\n");
    console.log(table);
    writeFileSync(
      join(repoRoot, "bench/results/kubernetes.md"),
      `# Containers on Kubernetes: start and exec

On the test cluster (single node, Pods in gVisor through containerd's runsc shim), through the real
server (\`--backend kubernetes\`, its own process) and the SDK, against raw \`kubectl\` measured in the
same run on the same image (the minbase root filesystem, pushed to the cluster registry and pulled by
digest), interleaved one measurement at a time. Medians. \`kubectl\` is a process per call, so its
floor includes a Go binary's start; the SDK talks to a server that holds its connections.

Machine: 2 cores, Node ${process.version}, Kubernetes v1.34.4. Run on ${new Date().toISOString().slice(0, 10)}.
Load average (1, 5, 15 min) at the start: ${loadStart}; at the end: ${loadavg()
        .map((x) => x.toFixed(1))
        .join(", ")} (a shared machine).
Rerun: \`pnpm --filter @chalk/bench run bench:kubernetes\`.

${table}
`,
    );
  } finally {
    for (const c of started) await c.stop().catch(() => undefined);
    await server.kill().catch(() => undefined);
    await removeDataDir(server.dataDir);
    await kubectl(cluster, ["delete", "namespace", rawNs, ns, "--ignore-not-found", "--wait=true"]).catch(
      () => undefined,
    );
    await releaseCluster();
  }
}

await main();
