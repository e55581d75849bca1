/**
 * Where create → first exec's time goes: the raw floor (`runsc run /bin/true` on runsc's default
 * spec) beside the same with one of the runtime's choices at a time (flags, cgroups, mounts), and
 * the runtime's create alone and with its first exec, interleaved round by round (the order
 * rotates), medians in ms. A diagnostic, not a figure of the table: it prints and writes
 * bench/results/create-diff.md.
 *
 *   pnpm --filter @chalk/bench run bench:create-diff          (as root)
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { LocalRuntime } from "@chalk/sandbox/local";
import { RUNSC, timeSync } from "./raw-runsc.js";
import { median } from "./stats.js";

const repo = join(import.meta.dirname, "..", "..");
const rootfs = execFileSync("bash", [join(repo, "tooling/scripts/rootfs.sh")], { encoding: "utf8" }).trim();
const rounds = Number(process.env.ROUNDS ?? 9);
const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(", ");
const loadStart = load();

const dir = mkdtempSync(join(tmpdir(), "chalk-bench-create-"));
const root = join(dir, "state");
let n = 0;

interface Config {
  root: unknown;
  process: { terminal: boolean };
  linux: Record<string, unknown>;
}

/** A bundle of runsc's default spec running /bin/true, changed by `edit`. */
function bundle(edit: (config: Config) => void = () => undefined): string {
  const b = mkdtempSync(join(dir, "bundle-"));
  execFileSync(RUNSC, ["spec", "--bundle", b, "--", "/bin/true"]);
  const config = JSON.parse(readFileSync(join(b, "config.json"), "utf8")) as Config;
  config.root = { path: rootfs, readonly: true };
  config.process.terminal = false;
  edit(config);
  writeFileSync(join(b, "config.json"), JSON.stringify(config));
  return b;
}

function run(b: string, flags: string[] = []): number {
  const id = `create-diff-${process.pid}-${n++}`;
  const ms = timeSync(() =>
    execFileSync(RUNSC, ["--root", root, "--network=none", ...flags, "run", "--bundle", b, id], {
      stdio: "ignore",
    }),
  );
  return ms;
}

const plain = bundle();
const cgroupParent = `/chalk-bench-${process.pid}`;
const withCgroups = () =>
  bundle((c) => {
    c.linux.cgroupsPath = `${cgroupParent}/${n}`;
    c.linux.resources = { pids: { limit: 1280 } };
  });
const cgroupBundles: string[] = [];
const stateDir = await mkdtemp(join(tmpdir(), "chalk-bench-create-rt-"));
const runtime = new LocalRuntime({ stateDir });

const variants: [string, () => Promise<number> | number][] = [
  ["raw floor: `runsc run /bin/true`", () => run(plain)],
  ["raw + `--overlay2=none`", () => run(plain, ["--overlay2=none"])],
  ["raw + `--gofer-network-namespace=new`", () => run(plain, ["--gofer-network-namespace=new"])],
  [
    "raw + cgroupsPath and a pids limit",
    () => {
      const b = withCgroups();
      cgroupBundles.push(b);
      return run(b);
    },
  ],
  [
    "LocalRuntime.create (no exec)",
    async () => {
      const t = performance.now();
      const s = await runtime.create({ rootfs: [rootfs] });
      const ms = performance.now() - t;
      await s.stop();
      return ms;
    },
  ],
  [
    "LocalRuntime.create + exec /bin/true",
    async () => {
      const t = performance.now();
      const s = await runtime.create({ rootfs: [rootfs] });
      await s.exec("/bin/true");
      const ms = performance.now() - t;
      await s.stop();
      return ms;
    },
  ],
];
const samples = variants.map(() => [] as number[]);
try {
  for (const [, fn] of variants) await fn(); // warm-up
  for (let i = 0; i < rounds; i++) {
    for (let j = 0; j < variants.length; j++) {
      const k = (i + j) % variants.length;
      samples[k]!.push(await variants[k]![1]());
    }
    process.stderr.write(`round ${i + 1}/${rounds}, load ${load()}\n`);
  }
} finally {
  // runsc leaves the cgroups it was given when they were made for it: remove the bench's.
  for (const c of (() => {
    try {
      return execFileSync("ls", ["/sys/fs/cgroup"], { encoding: "utf8" }).split("\n").filter(Boolean);
    } catch {
      return [];
    }
  })()) {
    for (let k = 0; k <= n; k++) {
      try {
        rmdirSync(join("/sys/fs/cgroup", c, cgroupParent, String(k)));
      } catch {
        // not made in this controller
      }
    }
    try {
      rmdirSync(join("/sys/fs/cgroup", c, cgroupParent));
    } catch {
      // not made in this controller
    }
  }
  // runsc pins the empty network namespace of `--network=none` sandboxes under its root.
  try {
    execFileSync("umount", [join(root, "null-netns")], { stdio: "ignore" });
  } catch {
    // not pinned
  }
  await rm(dir, { recursive: true, force: true });
  await rm(stateDir, { recursive: true, force: true });
}
mkdirSync(join(repo, "bench/results"), { recursive: true });
const floor = median(samples[0]!);
const rows = variants.map(
  ([name], k) =>
    `| ${name} | ${median(samples[k]!).toFixed(0)} ms | ${(median(samples[k]!) / floor).toFixed(2)}× |`,
);
const out = `# create → first exec: where the time goes

${rounds} interleaved rounds, medians, ratio to the first row. Machine: ${cpus().length} cores, Node ${process.version}.
Run on ${new Date().toISOString().slice(0, 16)}Z. Load average (1, 5, 15 min) at the start: ${loadStart}; at the end: ${load()}.
Rerun: \`pnpm --filter @chalk/bench run bench:create-diff\` (as root).

| variant | median | ratio |
|---|---|---|
${rows.join("\n")}
`;
console.log(out);
await writeFile(join(repo, "bench/results/create-diff.md"), out);
