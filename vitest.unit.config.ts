/**
 * `pnpm test:unit`: every package's unit tests (`src/**\/*.test.ts`, no I/O, no root, no runsc) in one
 * vitest process. Integration tests stay in each package's `test/` and run with `pnpm test`.
 */
import { defineConfig } from "vitest/config";
import { unitProjects } from "./tooling/vitest.preset.ts";

export default defineConfig({ test: { projects: unitProjects() } });
