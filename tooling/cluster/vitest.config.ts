import type { TestProjectInlineConfiguration } from "vitest/config";
import { chalkVitestConfig } from "../vitest.preset.ts";

// The integration project shares one cluster across its files: the global setup builds the
// binaries if missing, holds the cluster for this run, and releases it at the end (the cluster
// then goes down unless someone else holds it). Pod starts and namespace deletions take seconds.
const config = chalkVitestConfig({ integrationTimeoutMs: 300_000 });
const projects = (config.test?.projects ?? []) as TestProjectInlineConfiguration[];
for (const p of projects) {
  if (p.test?.name === "integration") p.test.globalSetup = ["./src/global-setup.ts"];
}
export default config;
