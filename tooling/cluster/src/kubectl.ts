import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code } from "@chalk/core";
import { runScript, type TestCluster } from "./cluster.js";

/** Options of {@link kubectl}. */
export interface KubectlOptions {
  /** Written to kubectl's stdin (for `apply -f -`). */
  input?: string;
  /** Kills kubectl after this many ms (default 60 s). */
  timeoutMs?: number;
}

/**
 * Runs the cluster's own kubectl as the cluster admin and resolves to its stdout. Throws
 * `unavailable` with kubectl's stderr when it exits non-zero.
 */
export async function kubectl(
  cluster: TestCluster,
  args: string[],
  opts: KubectlOptions = {},
): Promise<string> {
  const { stdout } = await runScript(cluster.kubectl, ["--kubeconfig", cluster.kubeconfig, ...args], {
    timeoutMs: opts.timeoutMs ?? 60_000,
    ...(opts.input === undefined ? {} : { input: opts.input }),
  });
  return stdout;
}

/** Like {@link kubectl}, but never throws: the exit code and both outputs. */
export async function tryKubectl(
  cluster: TestCluster,
  args: string[],
  opts: KubectlOptions = {},
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  try {
    return { ok: true, stdout: await kubectl(cluster, args, opts), stderr: "" };
  } catch (err) {
    return { ok: false, stdout: "", stderr: err instanceof Error ? err.message : String(err) };
  }
}

/** Applies a YAML or JSON manifest (`kubectl apply -f -`). */
export async function apply(cluster: TestCluster, manifest: string): Promise<void> {
  await kubectl(cluster, ["apply", "-f", "-"], { input: manifest });
}

/**
 * Polls `check` every `intervalMs` (default 100 ms) until it returns a value other than
 * `undefined`, and resolves to it; throws `deadline_exceeded` naming `what` after `timeoutMs`.
 */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new ChalkError(Code.DeadlineExceeded, `timed out waiting for ${what}`, {
        ...(last === undefined ? {} : { cause: last }),
      });
    }
    await sleep(opts.intervalMs ?? 100);
  }
}

/** Waits until a Pod's phase is Running and resolves to its IP. */
export async function waitForPodRunning(
  cluster: TestCluster,
  namespace: string,
  name: string,
  timeoutMs = 120_000,
): Promise<string> {
  return waitUntil(
    `Pod ${namespace}/${name} Running`,
    async () => {
      const out = await kubectl(cluster, [
        "-n",
        namespace,
        "get",
        "pod",
        name,
        "-o",
        "jsonpath={.status.phase} {.status.podIP}",
      ]);
      const [phase, ip] = out.trim().split(" ");
      if (phase === "Failed" || phase === "Succeeded") {
        throw new ChalkError(Code.FailedPrecondition, `Pod ${namespace}/${name} ended: ${phase}`);
      }
      return phase === "Running" && ip ? ip : undefined;
    },
    { timeoutMs },
  );
}

/** A namespace name that is unique to this run, with `prefix` (lowercase, ≤ 40 characters). */
export function uniqueNamespace(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}

/**
 * Creates a namespace and returns an async-disposable handle that deletes it (and all it holds)
 * and waits until it is gone, so that `await using ns = await testNamespace(...)` cleans up also
 * when a test fails.
 */
export async function testNamespace(
  cluster: TestCluster,
  prefix: string,
): Promise<{ name: string } & AsyncDisposable> {
  const name = uniqueNamespace(prefix);
  await kubectl(cluster, ["create", "namespace", name]);
  await waitUntil(`the default ServiceAccount of ${name}`, async () =>
    (await tryKubectl(cluster, ["-n", name, "get", "serviceaccount", "default"])).ok ? true : undefined,
  );
  return {
    name,
    async [Symbol.asyncDispose]() {
      await kubectl(cluster, ["delete", "namespace", name, "--wait=true", "--timeout=120s"], {
        timeoutMs: 150_000,
      });
    },
  };
}
