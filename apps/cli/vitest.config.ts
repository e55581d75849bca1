import type { TestProjectInlineConfiguration } from "vitest/config";
import { chalkVitestConfig } from "../../tooling/vitest.preset.ts";

const config = chalkVitestConfig({ integrationTimeoutMs: 600_000 });
// The integration tests run the built `chalk` binary: build it (and its workspace dependencies) once.
for (const project of (config.test?.projects ?? []) as TestProjectInlineConfiguration[]) {
  if (project.test?.name === "integration") project.test.globalSetup = ["test/build-cli.ts"];
}
export default config;
