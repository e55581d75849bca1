/**
 * The raw `kubectl` floor on the test cluster, and the counters the Kubernetes bench reads around
 * its measures: the API server's own `apiserver_request_total` and the Chalk server's
 * `chalk_kubernetes_*` metrics.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { runScript, type TestCluster } from "@chalk/test-cluster";

/** CPU and memory of a bench Pod, as Kubernetes quantities (the same for raw Pods and the server's). */
export interface PodResources {
  /** CPU limit, e.g. `"1"` or `"100m"`. */
  cpuLimit: string;
  /** CPU request (the server's `--cpu-request-percent` of the limit). */
  cpuRequest: string;
  /** Memory request and limit. */
  memory: string;
  /** Ephemeral-storage request and limit (the server's `--default-disk`). */
  disk: string;
}

/** The idle process the server's Pods run (apps/server/src/kubernetes/pod-spec.ts IDLE_COMMAND). */
const IDLE = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"];

/** A bare Pod in gVisor as a user would write it, with the label `bench=<group>`. */
export function rawPod(
  name: string,
  namespace: string,
  image: string,
  group: string,
  r: PodResources,
): object {
  const requests = { cpu: r.cpuRequest, memory: r.memory, "ephemeral-storage": r.disk };
  const limits = { cpu: r.cpuLimit, memory: r.memory, "ephemeral-storage": r.disk };
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels: { bench: group } },
    spec: {
      runtimeClassName: "gvisor",
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 0,
      containers: [{ name: "main", image, command: IDLE, resources: { requests, limits } }],
    },
  };
}

/** Raw kubectl in one namespace of the test cluster, one process per call. */
export class RawKubectl {
  /**
   * While true, kubectl runs with `-v=6` and each API response it logs is counted in
   * {@link requests} (the floor's client-side count; off for timed single calls, so the logging
   * does not weigh on them).
   */
  counting = false;
  /** API requests the kubectl processes made while {@link counting}. */
  requests = 0;

  constructor(
    readonly cluster: TestCluster,
    readonly namespace: string,
    readonly image: string,
  ) {}

  async #kubectl(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    const { stdout, stderr } = await runScript(
      this.cluster.kubectl,
      ["--kubeconfig", this.cluster.kubeconfig, ...(this.counting ? ["-v=6"] : []), ...args],
      { timeoutMs: opts.timeoutMs ?? 60_000, ...(opts.input === undefined ? {} : { input: opts.input }) },
    );
    if (this.counting)
      this.requests += stderr.split("\n").filter((l) => l.includes('] "Response" verb=')).length;
    return stdout;
  }

  /** `kubectl apply -f -` of `names` as one multi-document manifest (a v1 List), in one process. */
  async apply(names: string[], group: string, r: PodResources): Promise<void> {
    const items = names.map((n) => rawPod(n, this.namespace, this.image, group, r));
    await this.#kubectl(["apply", "-f", "-"], {
      input: JSON.stringify({ apiVersion: "v1", kind: "List", items }),
    });
  }

  /** `kubectl wait --for=condition=Ready` on one Pod or on every Pod of `bench=<group>`. */
  async waitReady(target: { pod: string } | { group: string }): Promise<void> {
    const which = "pod" in target ? [`pod/${target.pod}`] : ["pod", "-l", `bench=${target.group}`];
    await this.#kubectl(["wait", "-n", this.namespace, "--for=condition=Ready", ...which, "--timeout=600s"], {
      timeoutMs: 620_000,
    });
  }

  /** `kubectl exec POD -- true`. */
  async exec(pod: string): Promise<void> {
    await this.#kubectl(["exec", "-n", this.namespace, pod, "--", "true"]);
  }

  /** Deletes one Pod or every Pod of `bench=<group>`, waiting until they are gone. */
  async delete(target: { pod: string } | { group: string }): Promise<void> {
    const which = "pod" in target ? ["pod", target.pod] : ["pod", "-l", `bench=${target.group}`];
    await this.#kubectl(["delete", "-n", this.namespace, ...which, "--grace-period=0", "--wait=true"], {
      timeoutMs: 300_000,
    });
  }

  /**
   * Starts `kubectl get pods --watch --output-watch-events` on the namespace and counts the events
   * it prints: the watch events one client of the floor receives. `stop()` ends it.
   */
  watchEvents(): { count: () => number; stop: () => void } {
    let n = 0;
    const child: ChildProcess = spawn(
      this.cluster.kubectl,
      [
        "--kubeconfig",
        this.cluster.kubeconfig,
        "get",
        "pods",
        "-n",
        this.namespace,
        "--watch-only",
        "--output-watch-events",
        "-o",
        "name",
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    createInterface({ input: child.stdout! }).on("line", () => {
      n++;
    });
    return { count: () => n, stop: () => void child.kill() };
  }
}

/**
 * Requests the API server served so far, summed over every series of its `apiserver_request_total`
 * except the `/metrics` scrapes themselves: from every client (the Chalk server or kubectl, and the
 * kubelet, scheduler and controllers acting on the Pods).
 */
export async function apiServerRequests(cluster: TestCluster): Promise<number> {
  const { stdout: text } = await runScript(cluster.kubectl, [
    "--kubeconfig",
    cluster.kubeconfig,
    "get",
    "--raw",
    "/metrics",
  ]);
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith("apiserver_request_total{") || line.includes('subresource="/metrics"')) continue;
    total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

/** The Chalk server's own Kubernetes counters, scraped from its `/metrics`. */
export interface ServerKubeCounters {
  /** HTTP requests it sent to the API server. */
  apiRequests: number;
  /** Pod watch events its informer received. */
  watchEvents: number;
}

/** Reads `chalk_kubernetes_api_requests_total` and `chalk_kubernetes_watch_events_total` from `/metrics` text. */
export function serverKubeCounters(text: string): ServerKubeCounters {
  const sum = (name: string) =>
    text
      .split("\n")
      .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
      .reduce((acc, l) => acc + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
  return {
    apiRequests: sum("chalk_kubernetes_api_requests_total"),
    watchEvents: sum("chalk_kubernetes_watch_events_total"),
  };
}
