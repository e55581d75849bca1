import { chalkVitestConfig } from "../../tooling/vitest.preset.ts";

export default chalkVitestConfig();
