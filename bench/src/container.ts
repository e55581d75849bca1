/**
 * Containers through the real server (its own process) and the SDK, each figure as a ratio to the
 * raw runsc floor measured in the same run:
 *
 *   pnpm --filter @chalk/bench run bench:container
 *
 * - start: with the image cached, `new Container(...).run()` until Running plus the first
 *   `exec("true")` done, vs `runsc run` of /bin/true (create, start, wait, delete). Target ≤ 2×.
 * - exec: `c.exec("true")` round trip through the SDK, vs `runsc exec` of /bin/true in a running
 *   sandbox. Target ≤ 1.5×.
 * Medians. Results go to stdout and bench/results/container.md.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Container } from "@chalk/container";
import { removeDataDir, startServerProcess } from "@chalk/server/testing";
import { RawRunsc, RUNSC } from "./raw-runsc.js";
import { median } from "./stats.js";

const START_RUNS = 7;
const EXEC_RUNS = 50;
/** The image store the tests share, so the base image is built once per machine. */
const IMAGES_DIR = "/var/cache/chalk/images";
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
/** The floors of Debian's runsc (0.0~20221219.0), recorded in bench/results/container.md on 2026-11-28. */
const OLD_FLOORS = { runMs: 186, execMs: 48 };

async function main(): Promise<void> {
  const loadStart = loadavg()
    .map((x) => x.toFixed(1))
    .join(", ");
  const rootfs = execFileSync("bash", [join(repoRoot, "tooling/scripts/rootfs.sh")], {
    encoding: "utf8",
  }).trim();
  // The image is the same root filesystem the raw floor runs, served as a cached image.
  const server = await startServerProcess({
    args: ["--images-dir", IMAGES_DIR, "--rootfs-image", `minbase=${rootfs}`],
  });
  const transport = server.transport();
  const image = "minbase";
  const started: Container[] = [];
  try {
    // Warm the image cache (and the server) once.
    const warm = await new Container({ image, name: "bench-warm", transport }).run();
    started.push(warm);
    await warm.exec("true");

    const raw = new RawRunsc(rootfs);
    const floorRun: number[] = [];
    const floorExec: number[] = [];
    const startMs: number[] = [];
    const execMs: number[] = [];
    try {
      for (let i = 0; i < START_RUNS; i++) {
        floorRun.push(raw.run());
        const t = performance.now();
        const c = await new Container({ image, name: `bench-start-${i}`, transport }).run();
        started.push(c);
        await c.exec("true");
        startMs.push(performance.now() - t);
        await c.stop();
      }
      for (let i = 0; i < EXEC_RUNS; i++) {
        floorExec.push(raw.exec());
        const t = performance.now();
        await warm.exec("true");
        execMs.push(performance.now() - t);
      }
    } finally {
      raw.close();
    }
    const floors = { runMs: median(floorRun), execMs: median(floorExec) };
    const start = median(startMs);
    const exec = median(execMs);
    const row = (what: string, ms: number, floor: number, target: number, floorName: string, old: number) =>
      `| ${what} | ${old} ms | ${floorName} ${floor.toFixed(0)} ms | ${ms.toFixed(0)} ms | ${(ms / floor).toFixed(2)}× | ≤ ${target}× | ${ms / floor <= target ? "met" : "**missed**"} |`;
    const table = [
      "| measure | old floor (Debian runsc 2022-12) | raw floor, pinned runsc (median) | SDK (median) | ratio | target | |",
      "|---|---|---|---|---|---|---|",
      row(
        `run() to Running + first exec (${START_RUNS} runs)`,
        start,
        floors.runMs,
        2,
        "`runsc run /bin/true`",
        OLD_FLOORS.runMs,
      ),
      row(
        `exec("true") round trip (${EXEC_RUNS} runs)`,
        exec,
        floors.execMs,
        1.5,
        "`runsc exec /bin/true`",
        OLD_FLOORS.execMs,
      ),
    ].join("\n");
    console.log(table);
    const md = `# Container start and exec

With the image cached, through the real server (its own process) and the SDK, against the raw runsc
floor measured in the same run on the same root filesystem (the cached test rootfs, served to the
server as an operator-configured image), interleaved one measurement at a time. Medians.

Machine: 2 cores, Node ${process.version}, runsc ${execFileSync(RUNSC, ["--version"], { encoding: "utf8" }).split("\n")[0]?.split(" ")[2]} (pinned build, systrap). Run on ${new Date().toISOString().slice(0, 10)}.
Load average (1, 5, 15 min) at the start: ${loadStart}; at the end: ${loadavg()
      .map((x) => x.toFixed(1))
      .join(", ")} (a shared machine).
Rerun: \`pnpm --filter @chalk/bench run bench:container\`.

${table}
`;
    writeFileSync(join(repoRoot, "bench/results/container.md"), md);
  } finally {
    for (const c of started) await c.stop().catch(() => undefined);
    await server.kill();
    await removeDataDir(server.dataDir);
  }
}

await main();
