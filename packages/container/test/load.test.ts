/**
 * Load: 10 containers, 100 concurrent execs each (1000 in flight), zero failures. Exec latency
 * p50/p99 is printed and written to bench/results/container-load.json (a record, not an assertion).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect } from "vitest";

import { containerTest, TEST_IMAGE, useServer } from "./fixtures.js";

const ctx = useServer();
const test = containerTest(() => ctx.server);

const CONTAINERS = 10;
const EXECS = 100;

describe("load", () => {
  test("10 containers × 100 concurrent execs complete with zero failures", async ({ run }) => {
    const containers = await Promise.all(
      Array.from({ length: CONTAINERS }, (_, i) =>
        run({ image: TEST_IMAGE, name: `load-${i}`, cpu: "250m", memory: "128Mi" }),
      ),
    );
    const latencies: number[] = [];
    const failures: string[] = [];
    const started = performance.now();
    await Promise.all(
      containers.flatMap((c, i) =>
        Array.from({ length: EXECS }, async (_, j) => {
          const t0 = performance.now();
          try {
            const r = await c.exec("echo", `${i}-${j}`);
            if (r.exitCode !== 0 || r.stdoutText !== `${i}-${j}\n`)
              failures.push(`${i}-${j}: ${JSON.stringify(r)}`);
          } catch (err) {
            failures.push(`${i}-${j}: ${(err as Error).message}`);
          } finally {
            latencies.push(performance.now() - t0);
          }
        }),
      ),
    );
    const wallMs = performance.now() - started;
    latencies.sort((a, b) => a - b);
    const pct = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
    const summary = {
      containers: CONTAINERS,
      execsPerContainer: EXECS,
      failures: failures.length,
      p50Ms: Math.round(pct(50)),
      p99Ms: Math.round(pct(99)),
      maxMs: Math.round(latencies.at(-1) ?? 0),
      execsPerSecond: Math.round((latencies.length / wallMs) * 1000),
      measuredAt: new Date().toISOString(),
    };
    console.log(`load: ${JSON.stringify(summary)}`);
    const dir = join(import.meta.dirname, "../../../bench/results");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "container-load.json"), `${JSON.stringify(summary, null, 2)}\n`);
    expect(failures.slice(0, 5)).toEqual([]);
    expect(latencies.length).toBe(CONTAINERS * EXECS);
  });
});
