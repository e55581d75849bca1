import { buildScript, releaseCluster, runScript } from "./cluster.js";

/**
 * A vitest `globalSetup` for suites that use the test cluster: it builds the cluster's binaries if
 * they are missing (outside any test timeout; cached under `/var/cache/chalk`), provides this
 * process's pid as `clusterHolder` (tests pass it to `ensureCluster({ holderPid })`, so that the
 * cluster stays up from one test file to the next), and at the end releases it: the cluster goes
 * down unless someone else still holds it.
 *
 * @example
 * ```ts
 * // vitest.config.ts: test.globalSetup = ["@chalk/test-cluster/global-setup"]
 * const cluster = await ensureCluster({ holderPid: inject("clusterHolder") });
 * ```
 */
export default async function setup({
  provide,
}: {
  provide: (key: "clusterHolder", value: number) => void;
}): Promise<() => Promise<void>> {
  await runScript("bash", [buildScript, "all"], { timeoutMs: 60 * 60_000 });
  provide("clusterHolder", process.pid);
  return async () => {
    await releaseCluster(process.pid);
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    /** The pid that holds the test cluster for this vitest run (see `@chalk/test-cluster/global-setup`). */
    clusterHolder: number;
  }
}
