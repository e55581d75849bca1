import { chalkVitestConfig } from "../../tooling/vitest.preset.ts";

export default chalkVitestConfig({ integrationTimeoutMs: 600_000 });
