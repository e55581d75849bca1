/**
 * Both backends side by side in one run, through the real server (one process per backend) and the
 * SDK, each figure as a ratio to its raw floor measured in the same run, interleaved one sample at a
 * time: the local backend (`--backend local`) against raw `runsc`, the Kubernetes backend (`--backend
 * kubernetes`, the test cluster: Pods in gVisor) against raw `kubectl`:
 *
 *   pnpm --filter @chalk/bench run bench:kubernetes
 *
 * - start: with the image cached, `new Container(...).run()` until Running plus the first
 *   `exec("true")`; floors `runsc run /bin/true` and `kubectl apply` of the same Pod (same image by
 *   digest, RuntimeClass and resources) + `kubectl wait --for=condition=Ready` + `kubectl exec -- true`.
 * - exec: `c.exec("true")` round trip; floors `runsc exec /bin/true` and `kubectl exec POD -- true`.
 * - concurrent (Kubernetes only): N containers (default 50, `CHALK_BENCH_CONCURRENT`) created at once
 *   through the SDK, to all Running, with API requests and watch events per container (see
 *   kube-concurrent.ts), against N Pods in one `kubectl apply` and one `kubectl wait`.
 * Medians. Everything it makes is deleted at the end, also on failure. Results go to stdout and
 * bench/results/kubernetes.md.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Container } from "@chalk/container";
import { namespaceOf, removeDataDir, type ServerProcess, startServerProcess } from "@chalk/server/testing";
import { ensureCluster, kubectl, pushRootfsImage, releaseCluster } from "@chalk/test-cluster";
import { type ConcurrentSample, concurrentKubectl, concurrentSdk } from "./kube-concurrent.js";
import { type PodResources, RawKubectl } from "./kube-floor.js";
import { RawRunsc } from "./raw-runsc.js";
import { median } from "./stats.js";

const START_RUNS = 7;
const EXEC_RUNS = 30;
const CONCURRENT = Number(process.env.CHALK_BENCH_CONCURRENT ?? 50);
const CONCURRENT_ROUNDS = Number(process.env.CHALK_BENCH_CONCURRENT_ROUNDS ?? 2);
const IMAGES_DIR = "/var/cache/chalk/images";
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const PREFIX = "bench-";
/** The server's `--cpu-request-percent` and `--default-disk`, which the raw Pods copy. */
const CPU_REQUEST_PERCENT = 10;
const DISK = "1Gi";
/** One container of the start and exec measures: a core, 1 GiB. */
const ONE = { cpu: "1", memory: "1Gi" };
const ONE_RAW: PodResources = { cpuLimit: "1", cpuRequest: "100m", memory: "1Gi", disk: DISK };
/** One of the concurrent ones: a tenth of a core (a request of 10m), 128 MiB, so N fit on 2 cores. */
const SMALL = { cpu: "100m", memory: "128Mi" };
const SMALL_RAW: PodResources = { cpuLimit: "100m", cpuRequest: "10m", memory: "128Mi", disk: DISK };

const loads = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(", ");
const ms = (x: number) => `${x.toFixed(0)} ms`;
const ratio = (x: number, floor: number) => `${(x / floor).toFixed(2)}×`;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function main(): Promise<void> {
  const loadStart = loads();
  const cluster = await ensureCluster();
  const rootfs = execFileSync("bash", [join(repoRoot, "tooling/scripts/rootfs.sh")], {
    encoding: "utf8",
  }).trim();
  const image = (
    await pushRootfsImage(cluster, { dir: rootfs, repository: "test/minbase", key: "bookworm-minbase" })
  ).digestReference;
  const servers: ServerProcess[] = [];
  const started: Container[] = [];
  const rawNs = `${PREFIX}raw`;
  const ns = namespaceOf("default", PREFIX);
  let raw: RawRunsc | undefined;
  try {
    const local = await startServerProcess({
      args: ["--images-dir", IMAGES_DIR, "--rootfs-image", `minbase=${rootfs}`],
    });
    servers.push(local);
    const kube = await startServerProcess({
      args: [
        ...["--images-dir", IMAGES_DIR, "--backend", "kubernetes", "--kubeconfig", cluster.kubeconfig],
        ...["--registry", cluster.registry, "--registry-insecure", "--namespace-prefix", PREFIX],
        ...["--cpu-request-percent", String(CPU_REQUEST_PERCENT), "--default-disk", DISK],
        ...["--metrics-listen", "127.0.0.1:0"],
      ],
    });
    servers.push(kube);
    const localT = local.transport();
    const kubeT = kube.transport();

    // Warm both servers, the image caches and the floors once.
    const localWarm = await new Container({ image: "minbase", name: "bench-warm", transport: localT }).run();
    started.push(localWarm);
    await localWarm.exec("true");
    const kubeWarm = await new Container({ image, name: "bench-warm", transport: kubeT, ...ONE }).run();
    started.push(kubeWarm);
    await kubeWarm.exec("true");
    await kubectl(cluster, ["create", "namespace", rawNs]);
    const kc = new RawKubectl(cluster, rawNs, image);
    await kc.apply(["raw-warm"], "warm", ONE_RAW);
    await kc.waitReady({ pod: "raw-warm" });
    await kc.exec("raw-warm");
    raw = new RawRunsc(rootfs);

    const s = { runsc: [], local: [], kubectl: [], kube: [] } as Record<string, number[]>;
    const e = { runsc: [], local: [], kubectl: [], kube: [] } as Record<string, number[]>;
    for (let i = 0; i < START_RUNS; i++) {
      s.runsc!.push(raw.run());
      s.local!.push(
        await timed(async () => {
          const c = await new Container({
            image: "minbase",
            name: `bench-start-${i}`,
            transport: localT,
          }).run();
          started.push(c);
          await c.exec("true");
        }),
      );
      await started.pop()?.stop();
      s.kubectl!.push(
        await timed(async () => {
          await kc.apply([`raw-${i}`], "start", ONE_RAW);
          await kc.waitReady({ pod: `raw-${i}` });
          await kc.exec(`raw-${i}`);
        }),
      );
      await kc.delete({ pod: `raw-${i}` });
      s.kube!.push(
        await timed(async () => {
          const c = await new Container({ image, name: `bench-start-${i}`, transport: kubeT, ...ONE }).run();
          started.push(c);
          await c.exec("true");
        }),
      );
      await started.pop()?.stop();
    }
    for (let i = 0; i < EXEC_RUNS; i++) {
      e.runsc!.push(raw.exec());
      e.local!.push(await timed(() => localWarm.exec("true")));
      e.kubectl!.push(await timed(() => kc.exec("raw-warm")));
      e.kube!.push(await timed(() => kubeWarm.exec("true")));
    }
    raw.close();
    raw = undefined;

    const sdk: ConcurrentSample[] = [];
    const floor: ConcurrentSample[] = [];
    for (let round = 0; round < CONCURRENT_ROUNDS; round++) {
      floor.push(await concurrentKubectl({ n: CONCURRENT, round, raw: kc, resources: SMALL_RAW }));
      sdk.push(
        await concurrentSdk({
          n: CONCURRENT,
          round,
          image,
          transport: kubeT,
          ...SMALL,
          scrapeMetrics: () => kube.metricsText(),
          cluster,
        }),
      );
    }
    writeResults({ s, e, sdk, floor, loadStart });
  } finally {
    raw?.close();
    for (const c of started) await c.stop().catch(() => undefined);
    for (const server of servers) {
      await server.kill().catch(() => undefined);
      await removeDataDir(server.dataDir);
    }
    await kubectl(cluster, ["delete", "namespace", rawNs, ns, "--ignore-not-found", "--wait=true"], {
      timeoutMs: 300_000,
    }).catch((err) => console.error(`cleanup: ${err}`));
    await releaseCluster();
  }
}

function writeResults(r: {
  s: Record<string, number[]>;
  e: Record<string, number[]>;
  sdk: ConcurrentSample[];
  floor: ConcurrentSample[];
  loadStart: string;
}): void {
  const row = (what: string, m: Record<string, number[]>) => {
    const [runsc, local, kc, kube] = [m.runsc!, m.local!, m.kubectl!, m.kube!].map(median) as [
      number,
      number,
      number,
      number,
    ];
    return `| ${what} | ${ms(runsc)} | ${ms(local)} | ${ratio(local, runsc)} | ${ms(kc)} | ${ms(kube)} | ${ratio(kube, kc)} | ${ratio(kube, local)} |`;
  };
  const sideBySide = [
    "| measure | raw `runsc` | SDK, `--backend local` | ratio | raw `kubectl` | SDK, `--backend kubernetes` | ratio | kubernetes / local |",
    "|---|---|---|---|---|---|---|---|",
    row(`run() to Running + first exec (${START_RUNS} runs)`, r.s),
    row(`exec("true") round trip (${EXEC_RUNS} runs)`, r.e),
  ].join("\n");
  const med = (xs: ConcurrentSample[], k: keyof ConcurrentSample) => median(xs.map((x) => x[k]));
  const crow = (what: string, k: keyof ConcurrentSample, unit: (x: number) => string) => {
    const [f, v] = [med(r.floor, k), med(r.sdk, k)];
    return `| ${what} | ${unit(f)} | ${unit(v)} | ${ratio(v, f)} |`;
  };
  const per = (x: number) => x.toFixed(1);
  const concurrent = [
    `| ${CONCURRENT} at once (${CONCURRENT_ROUNDS} rounds, medians) | raw \`kubectl\`: one multi-document \`apply\` + one \`wait\` | SDK, \`--backend kubernetes\`: ${CONCURRENT} concurrent \`run()\` | ratio |`,
    "|---|---|---|---|",
    crow("time to all Running", "allRunningMs", ms),
    crow("API requests per container sent by the client, to all Running", "clientRequests", per),
    crow("… through stop and deletion", "clientRequestsThroughStop", per),
    crow(
      "API requests per container the API server served (all clients), to all Running",
      "apiServerRequests",
      per,
    ),
    crow("… through stop and deletion", "apiServerRequestsThroughStop", per),
    crow("watch events per container the client received, to all Running", "watchEvents", per),
  ].join("\n");
  const rounds = (xs: ConcurrentSample[]) => xs.map((x) => ms(x.allRunningMs)).join(", ");
  console.log(`${sideBySide}\n\n${concurrent}`);
  writeFileSync(
    join(repoRoot, "bench/results/kubernetes.md"),
    `# Both backends side by side: start, exec, and ${CONCURRENT} at once on Kubernetes

One run, both backends, each through the real server (its own process, one per backend) and the SDK,
each against its raw floor measured in the same run on the same root filesystem (the minbase test
rootfs: served to the local server as an operator image; pushed to the cluster registry and pulled by
digest on Kubernetes), interleaved one sample at a time (runsc, local, kubectl, kubernetes). Medians.
Kubernetes is the test cluster: one node, Pods in gVisor through containerd's runsc shim. \`kubectl\`
is a process per call, so its floor includes a Go binary's start; the SDK talks to a server that
holds its connections.

Machine: 2 cores, Node ${process.version}, Kubernetes v1.34.4. Run on ${new Date().toISOString().slice(0, 10)}.
Load average (1, 5, 15 min) at the start: ${r.loadStart}; at the end: ${loads()} (a shared machine).
Rerun: \`pnpm --filter @chalk/bench run bench:kubernetes\` (\`CHALK_BENCH_CONCURRENT\`,
\`CHALK_BENCH_CONCURRENT_ROUNDS\` change the concurrent measure's size and rounds).

Start and exec containers have 1 CPU and 1 GiB (on Kubernetes: a 100m CPU request,
\`--cpu-request-percent ${CPU_REQUEST_PERCENT}\`, and ${DISK} of ephemeral storage, \`--default-disk ${DISK}\`;
the raw Pods the same).

${sideBySide}

## ${CONCURRENT} containers at once on Kubernetes

Each container has 100m CPU (a 10m request) and 128 MiB; the raw Pods the same. The rounds alternate,
floor first. Requests "sent by the client" are, for the SDK, every HTTP request the server process
sent to the API server (\`chalk_kubernetes_api_requests_total\`, counted on the wire; a watch connection
and an exec upgrade count one each), and for the floor every API response the kubectl processes
logged at \`-v=6\` (apply, wait, delete). Requests "the API server served" are the change in its own
\`apiserver_request_total\` (less the scrapes): every client, including the kubelet, scheduler and
controllers acting on the Pods, and anything else using the shared cluster meanwhile. Watch events
are the server informer's (\`chalk_kubernetes_watch_events_total\`) and, for the floor, those one
\`kubectl get pods --watch-only --output-watch-events\` on the namespace received.

${concurrent}

Time to all Running per round: raw ${rounds(r.floor)}; SDK ${rounds(r.sdk)}.
`,
  );
}

await main();
