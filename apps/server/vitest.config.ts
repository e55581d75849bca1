import type { TestProjectInlineConfiguration } from "vitest/config";
import { chalkVitestConfig } from "../../tooling/vitest.preset.ts";

// The Kubernetes backend's integration tests use the test cluster: its global setup builds the
// binaries if missing, holds the cluster for this run and releases it at the end.
const config = chalkVitestConfig();
const projects = (config.test?.projects ?? []) as TestProjectInlineConfiguration[];
for (const p of projects) {
  if (p.test?.name === "integration") p.test.globalSetup = ["../../tooling/cluster/src/global-setup.ts"];
}
export default config;
