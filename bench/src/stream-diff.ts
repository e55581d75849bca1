/**
 * Where the stdout streaming gap comes from: the raw floor (`runsc exec … head -c N /dev/zero` in
 * a sandbox made by hand, read by this Node process) beside one difference at a time between it
 * and `LocalProcess`, interleaved round by round (the order rotates), medians in MiB/s. A
 * diagnostic, not a figure of the table: it prints and writes bench/results/stream-diff.md.
 *
 *   pnpm --filter @chalk/bench run bench:stream-diff          (as root)
 *   ROUNDS=5 MIB=32 pnpm --filter @chalk/bench run bench:stream-diff
 */
import { execFileSync, type StdioOptions, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { Sandbox } from "@chalk/sandbox";
import { LocalRuntime } from "@chalk/sandbox/local";
import { RawRunsc, RUNSC } from "./raw-runsc.js";
import { median } from "./stats.js";

const repo = join(import.meta.dirname, "..", "..");
const rootfs = execFileSync("bash", [join(repo, "tooling/scripts/rootfs.sh")], { encoding: "utf8" }).trim();
const rounds = Number(process.env.ROUNDS ?? 9);
const bytes = Number(process.env.MIB ?? 64) * 2 ** 20;
const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(", ");
const loadStart = load();

/** `runsc <flags> exec <id> head -c bytes /dev/zero` read by this process, in MiB/s. */
function rawExec(flags: string[], id: string, stdio: StdioOptions, prefix: string[] = []): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn(RUNSC, [...flags, "exec", ...prefix, id, "head", "-c", String(bytes), "/dev/zero"], {
      stdio,
    });
    let received = 0;
    child.stdout?.on("data", (c: Buffer) => {
      received += c.length;
    });
    child.stderr?.resume();
    child.stdin?.on("error", () => undefined);
    child.once("error", reject);
    child.once("close", () =>
      received === bytes
        ? resolve(bytes / 2 ** 20 / ((performance.now() - t) / 1000))
        : reject(new Error(`${received} of ${bytes} bytes`)),
    );
  });
}

/** The public API, read with for-await (as the table's bench does), in MiB/s. */
async function viaApi(sandbox: Sandbox, flowing: boolean): Promise<number> {
  const t = performance.now();
  const proc = await sandbox.spawn(["head", "-c", String(bytes), "/dev/zero"]);
  let received = 0;
  if (flowing) {
    proc.stderr.resume();
    proc.stdout.on("data", (c: Buffer) => {
      received += c.length;
    });
    await new Promise((r) => proc.stdout.once("end", r));
  } else {
    const stderr = (async () => {
      for await (const _ of proc.stderr);
    })();
    for await (const c of proc.stdout) received += (c as Uint8Array).length;
    await stderr;
  }
  await proc.wait();
  if (received !== bytes) throw new Error(`${received} of ${bytes} bytes`);
  return bytes / 2 ** 20 / ((performance.now() - t) / 1000);
}

const raw = new RawRunsc(rootfs);
const rawRoot = join(raw.dir, "state");
const stateDir = await mkdtemp(join(tmpdir(), "chalk-bench-diff-"));
const runtime = new LocalRuntime({ stateDir });
const ours = await runtime.create({ rootfs: [rootfs] });
const oursFlags = [
  `--root=${join(stateDir, "runsc")}`,
  "--network=none",
  "--overlay2=none",
  "--gofer-network-namespace=new",
];
const rawFlags = ["--root", rawRoot, "--network=none"];
const logDir = await mkdtemp(join(tmpdir(), "chalk-bench-diff-log-"));
let n = 0;
const variants: [string, () => Promise<number>][] = [
  ["raw floor (stdin, stderr ignored)", () => rawExec(rawFlags, "floor-exec", ["ignore", "pipe", "ignore"])],
  ["raw + stdin and stderr pipes", () => rawExec(rawFlags, "floor-exec", ["pipe", "pipe", "pipe"])],
  [
    "raw + --debug-log per exec",
    () =>
      rawExec([...rawFlags, `--debug-log=${join(logDir, `${n++}.log`)}`], "floor-exec", [
        "ignore",
        "pipe",
        "ignore",
      ]),
  ],
  [
    "runsc exec into our sandbox (our flags)",
    () => rawExec(oursFlags, ours.id, ["ignore", "pipe", "ignore"]),
  ],
  ["LocalProcess, for-await", () => viaApi(ours, false)],
  ["LocalProcess, 'data' listener", () => viaApi(ours, true)],
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
  await ours.stop().catch(() => undefined);
  raw.close();
  await rm(stateDir, { recursive: true, force: true });
  await rm(logDir, { recursive: true, force: true });
}
const floor = median(samples[0]!);
const rows = variants.map(
  ([name], k) =>
    `| ${name} | ${median(samples[k]!).toFixed(1)} MiB/s | ${(median(samples[k]!) / floor).toFixed(2)}× |`,
);
const out = `# Streaming: each difference from the raw floor, in isolation

${rounds} interleaved rounds of ${bytes / 2 ** 20} MiB of \`head -c N /dev/zero\` stdout, medians, ratio to the
first row. Machine: ${cpus().length} cores, Node ${process.version}. Run on ${new Date().toISOString().slice(0, 16)}Z.
Load average (1, 5, 15 min) at the start: ${loadStart}; at the end: ${load()}.
Rerun: \`pnpm --filter @chalk/bench run bench:stream-diff\` (as root).

| variant | median | ratio |
|---|---|---|
${rows.join("\n")}
`;
console.log(out);
await writeFile(join(repo, "bench/results/stream-diff.md"), out);
