import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ChalkError, Code } from "@chalk/core";

/** `tooling/cluster/cluster.sh`, the one entry point that starts and stops the cluster. */
export const clusterScript: string = join(dirname(fileURLToPath(import.meta.url)), "..", "cluster.sh");

/** `tooling/cluster/build.sh`, which builds the cluster's pinned binaries into the shared cache. */
export const buildScript: string = join(dirname(fileURLToPath(import.meta.url)), "..", "build.sh");

/**
 * A running test cluster, as `cluster.sh env` describes it. Every address is on the node's private
 * test network; nothing listens on a public interface.
 */
export interface TestCluster {
  /** Path of the cluster-admin kubeconfig (root-only file; the API server is `https://<nodeAddress>:6443`). */
  kubeconfig: string;
  /** `host:port` of the OCI registry (plain HTTP) that the node's containerd pulls from. */
  registry: string;
  /** The node's address (InternalIP): API server, kubelet (:10250), registry, NodePorts. */
  nodeAddress: string;
  /** The Node object's name. */
  nodeName: string;
  /** The RuntimeClass whose handler is runsc (every Pod runs in gVisor even without it). */
  runtimeClassName: string;
  /** The Pods' CIDR (one CNI bridge, no masquerade). */
  podCidr: string;
  /** The ClusterIP range; ClusterIPs are reachable from the node through kube-proxy. */
  serviceCidr: string;
  /** The cluster's state directory (PKI under `pki/`, logs under `logs/`). */
  stateDir: string;
  /** Path of the kubectl built for this cluster's version. */
  kubectl: string;
  /** Path of etcdctl (etcd's client certificates are under `stateDir/pki/etcd-*`). */
  etcdctl: string;
  /** Path of the static runsc that the node's gVisor shim runs. */
  runsc: string;
  /** runsc's `--root` for the Pods' sandboxes (containerd namespace `k8s.io`). */
  runscRoot: string;
}

const envKeys: Record<string, keyof TestCluster> = {
  KUBECONFIG: "kubeconfig",
  CHALK_CLUSTER_REGISTRY: "registry",
  CHALK_CLUSTER_NODE_IP: "nodeAddress",
  CHALK_CLUSTER_NODE_NAME: "nodeName",
  CHALK_CLUSTER_RUNTIME_CLASS: "runtimeClassName",
  CHALK_CLUSTER_POD_CIDR: "podCidr",
  CHALK_CLUSTER_SERVICE_CIDR: "serviceCidr",
  CHALK_CLUSTER_STATE: "stateDir",
  CHALK_CLUSTER_KUBECTL: "kubectl",
  CHALK_CLUSTER_ETCDCTL: "etcdctl",
  CHALK_CLUSTER_RUNSC: "runsc",
  CHALK_CLUSTER_RUNSC_ROOT: "runscRoot",
};

/**
 * Parses the `KEY=value` lines that `cluster.sh up` and `cluster.sh env` print (other lines are
 * ignored). Throws `failed_precondition` naming the first missing key.
 */
export function parseClusterEnv(text: string): TestCluster {
  const found: Partial<TestCluster> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    const key = m ? envKeys[m[1]!] : undefined;
    if (m && key) found[key] = m[2]!;
  }
  for (const [env, key] of Object.entries(envKeys)) {
    if (!found[key]) {
      throw new ChalkError(Code.FailedPrecondition, `cluster.sh printed no ${env}=… line`, {
        details: { output: text.slice(-2000) },
      });
    }
  }
  return found as TestCluster;
}

/** Runs a script, resolving to its stdout; stdout and stderr are bounded (16 MiB). */
export function runScript(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; input?: string } = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { maxBuffer: 16 << 20, timeout: opts.timeoutMs ?? 0, killSignal: "SIGTERM" },
      (err, stdout, stderr) => {
        if (err) {
          reject(
            new ChalkError(
              Code.Unavailable,
              `${cmd} ${args.join(" ")} failed: ${stderr.trim().slice(-3000)}`,
              {
                cause: err,
              },
            ),
          );
        } else resolve({ stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/**
 * The environment variable that names the process holding the cluster for a whole test run (set
 * by `@chalk/test-cluster/global-setup`; {@link ensureCluster} and {@link releaseCluster} default to it).
 */
export const holderEnv = "CHALK_CLUSTER_HOLDER";

function defaultHolder(): number {
  const env = Number(process.env[holderEnv]);
  return Number.isInteger(env) && env > 0 ? env : process.pid;
}

/** Options of {@link ensureCluster}. */
export interface EnsureClusterOptions {
  /**
   * The process that holds the cluster until {@link releaseCluster} with the same pid (or until it
   * exits and a later `release` notices). Default: `CHALK_CLUSTER_HOLDER` (set by the global
   * setup), else this process.
   */
  holderPid?: number;
  /** How long `cluster.sh up` may take, in ms (default 10 minutes: it builds what is missing). */
  timeoutMs?: number;
}

/**
 * Makes sure the test cluster runs and returns how to reach it: runs `cluster.sh up --holder PID`,
 * which returns at once when the cluster is already healthy, and otherwise builds what is missing
 * (cached under `/var/cache/chalk`) and starts it (a few seconds when the binaries are cached).
 * Needs root. Pair with {@link releaseCluster}.
 *
 * @example
 * ```ts
 * const cluster = await ensureCluster();
 * try {
 *   await kubectl(cluster, ["get", "nodes"]);
 * } finally {
 *   await releaseCluster();
 * }
 * ```
 */
export async function ensureCluster(opts: EnsureClusterOptions = {}): Promise<TestCluster> {
  const holder = opts.holderPid ?? defaultHolder();
  const { stdout } = await runScript("bash", [clusterScript, "up", "--holder", String(holder)], {
    timeoutMs: opts.timeoutMs ?? 600_000,
  });
  return parseClusterEnv(stdout);
}

/**
 * Says that `holderPid` (default: as in {@link ensureCluster}) no longer needs the cluster. When no live holder is
 * left and nobody brought the cluster up by hand (`cluster.sh up` without `--holder`), the cluster
 * goes down and leaves nothing behind.
 */
export async function releaseCluster(holderPid: number = defaultHolder()): Promise<void> {
  await runScript("bash", [clusterScript, "release", String(holderPid)], { timeoutMs: 180_000 });
}

/** The processes that hold the cluster now (`manual` for a plain `cluster.sh up`). */
export async function clusterHolders(): Promise<string[]> {
  const { stdout } = await runScript("bash", [clusterScript, "holders"], { timeoutMs: 30_000 });
  return stdout.split("\n").filter((l) => l.trim() !== "");
}
