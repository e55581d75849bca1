import type { TestProjectInlineConfiguration } from "vitest/config";
import { chalkVitestConfig } from "../../tooling/vitest.preset.ts";

// The seed suite runs on the local backend and on the Kubernetes backend (the test cluster): the
// cluster's global setup builds its binaries if missing, holds the cluster for this run and releases
// it at the end (it goes down unless someone else holds it).
const config = chalkVitestConfig({ integrationTimeoutMs: 600_000 });
const projects = (config.test?.projects ?? []) as TestProjectInlineConfiguration[];
for (const p of projects) {
  if (p.test?.name === "integration") p.test.globalSetup = ["../../tooling/cluster/src/global-setup.ts"];
}
export default config;
