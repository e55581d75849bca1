/**
 * Shared vitest presets. Every package's `vitest.config.ts` builds on these so that tests resolve
 * workspace dependencies to their TypeScript sources (the `@chalk/source` export condition) and
 * never need a prior build.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig, type ViteUserConfig } from "vitest/config";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

/** Resolve workspace packages to their sources. */
export const sourceResolve = { conditions: ["@chalk/source", "import", "node", "default"] };
const sourceConditions = {
  resolve: sourceResolve,
  ssr: { resolve: { conditions: sourceResolve.conditions, externalConditions: ["@chalk/source"] } },
};

/**
 * Two vitest projects: `unit` (beside the code, no I/O, fast) and `integration` (in `test/`, against
 * real runsc, registries and servers, with long timeouts, run one file at a time because they share
 * one machine).
 */
export function chalkVitestConfig(opts: { integrationTimeoutMs?: number } = {}): ViteUserConfig {
  return defineConfig({
    ...sourceConditions,
    test: {
      // Integration files share one machine's runsc, network and cgroups: one file at a time.
      fileParallelism: false,
      // A JSON report per package lets tooling/scripts/test.sh print one total for the whole repo.
      reporters: [
        "default",
        ["json", { outputFile: join(repoRoot, ".test-results", `${basename(process.cwd())}.json`) }],
      ],
      projects: [
        {
          ...sourceConditions,
          test: {
            name: "unit",
            include: ["src/**/*.test.ts"],
            testTimeout: 10_000,
          },
        },
        {
          ...sourceConditions,
          test: {
            name: "integration",
            include: ["test/**/*.test.ts"],
            testTimeout: opts.integrationTimeoutMs ?? 120_000,
            hookTimeout: opts.integrationTimeoutMs ?? 120_000,
            pool: "forks",
          },
        },
      ],
    },
  });
}

/**
 * The `unit` project of every package and app, for one vitest process at the repository's root
 * (`pnpm test:unit`): each named after its directory, rooted there, with the same source resolution.
 */
export function unitProjects() {
  return ["packages", "apps"].flatMap((group) =>
    readdirSync(join(repoRoot, group), { withFileTypes: true })
      .map((d) => join(repoRoot, group, d.name))
      .filter((dir) => existsSync(join(dir, "package.json")))
      .map((dir) => ({
        ...sourceConditions,
        test: {
          name: (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name: string }).name,
          root: dir,
          include: ["src/**/*.test.ts"],
          testTimeout: 10_000,
        },
      })),
  );
}
