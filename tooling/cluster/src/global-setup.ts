import { buildScript, holderEnv, releaseCluster, runScript } from "./cluster.js";

/**
 * A vitest `globalSetup` for suites that use the test cluster: it builds the cluster's binaries if
 * they are missing (outside any test timeout; cached under `/var/cache/chalk`), makes this
 * process the holder of the cluster for the whole run (`CHALK_CLUSTER_HOLDER`, which
 * {@link ensureCluster} reads in the test workers, so that the cluster stays up from one test file
 * to the next), and at the end releases it: the cluster goes down unless someone else holds it.
 *
 * @example
 * ```ts
 * // vitest.config.ts: test.globalSetup = ["@chalk/test-cluster/global-setup"]
 * const cluster = await ensureCluster();
 * ```
 */
export default async function setup(): Promise<() => Promise<void>> {
  await runScript("bash", [buildScript, "all"], { timeoutMs: 60 * 60_000 });
  process.env[holderEnv] = String(process.pid);
  return async () => {
    await releaseCluster(process.pid);
  };
}
