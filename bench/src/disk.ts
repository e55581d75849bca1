/**
 * What a disk limit costs: creating and removing one `@chalk/disk` file system (a sparse file,
 * `mkfs.ext4`, a loop mount), and a sandbox's create → first exec with and without one, each
 * interleaved with its floor in the same run (the machine is shared: only ratios and same-run
 * differences compare).
 *
 *   pnpm --filter @chalk/bench run bench:disk      (as root)
 *
 * Results go to stdout.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, rmdir } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createDisk, removeDisk } from "@chalk/disk";
import { LocalRuntime } from "@chalk/sandbox/local";
import { median } from "./stats.js";

const RUNS = 15;
const GiB = 1024 ** 3;

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "chalk-bench-disk-"));
  const rootfs = execFileSync("bash", [join(import.meta.dirname, "../../tooling/scripts/rootfs.sh")], {
    encoding: "utf8",
  }).trim();
  const runtime = new LocalRuntime({ stateDir: join(dir, "state") });
  const load = loadavg().map((l) => l.toFixed(1));
  const r: Record<string, number[]> = {};
  const add = (k: string, v: number) => {
    r[k] ??= [];
    r[k].push(v);
  };
  try {
    for (let i = 0; i < RUNS; i++) {
      // Floor: a plain directory, as a sandbox without a disk limit gets.
      const plain = join(dir, `plain-${i}`);
      add("mkdir", await time(() => mkdir(plain)));
      add("rmdir", await time(() => rmdir(plain)));
      for (const [label, bytes, journal] of [
        ["10 GiB, no journal (writable layers)", 10 * GiB, false],
        ["10 GiB, journal (volumes)", 10 * GiB, true],
      ] as const) {
        const image = join(dir, `d-${i}.img`);
        const mnt = join(dir, `d-${i}`);
        add(`create ${label}`, await time(() => createDisk({ image, mountPoint: mnt, bytes, journal })));
        add(`remove ${label}`, await time(() => removeDisk(image, mnt)));
      }
      for (const disk of [undefined, "10Gi"] as const) {
        let sandbox: Awaited<ReturnType<LocalRuntime["create"]>> | undefined;
        add(
          `sandbox create + first exec, disk ${disk ?? "none"}`,
          await time(async () => {
            sandbox = await runtime.create({ rootfs, ...(disk ? { disk } : {}) });
            await sandbox.exec("true");
          }),
        );
        add(
          `sandbox stop, disk ${disk ?? "none"}`,
          await time(() => (sandbox as NonNullable<typeof sandbox>).stop()),
        );
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  console.log(
    `disk bench: ${RUNS} runs each, interleaved; load average at the start ${load.join(", ")}, at the end ${loadavg()
      .map((l) => l.toFixed(1))
      .join(", ")}`,
  );
  for (const [k, v] of Object.entries(r)) {
    console.log(
      `${k.padEnd(48)} median ${median(v).toFixed(1)} ms  (min ${Math.min(...v).toFixed(1)}, max ${Math.max(...v).toFixed(1)})`,
    );
  }
}

await main();
