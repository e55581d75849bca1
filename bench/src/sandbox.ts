/**
 * Sandbox benchmark: `@chalk/sandbox` in-process (`LocalRuntime`) and through gRPC (the remote
 * client against the sandbox service around a `LocalRuntime`, on loopback, in this process),
 * each figure a ratio to the raw runsc floor measured in the same run on the same root filesystem,
 * interleaved. Not a test: it prints a table and writes bench/results/sandbox.md and the table in
 * packages/sandbox/README.md.
 *
 *   pnpm bench                     (from the repo root, as root)
 *   ROUNDS=3 pnpm bench            (fewer samples, for a quick look)
 *
 * Another runtime is one more column: see {@link SandboxBenchColumn}.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { SandboxService } from "@chalk/proto/sandbox/v1";
import { addService, createTransport, listen } from "@chalk/rpc";
import { connectSandboxes } from "@chalk/sandbox";
import { defaultRunscPath, LocalRuntime } from "@chalk/sandbox/local";
import { sandboxesFromImages, sandboxServiceImpl } from "@chalk/sandbox/server";
import { runSandboxBench, type SandboxBenchColumn, sandboxBenchTable } from "./sandbox-bench.js";

const repo = join(import.meta.dirname, "..", "..");
const rootfs = execFileSync("bash", [join(repo, "tooling/scripts/rootfs.sh")], { encoding: "utf8" }).trim();
const scale = Number(process.env.ROUNDS ?? 0) || undefined;
const loadStart = loadavg()
  .map((x) => x.toFixed(1))
  .join(", ");

/** A column over a fresh LocalRuntime on a temporary state directory. */
async function localState(): Promise<{ runtime: LocalRuntime; dispose(): Promise<void> }> {
  const stateDir = await mkdtemp(join(tmpdir(), "chalk-bench-sbx-"));
  const runtime = new LocalRuntime({ stateDir });
  return { runtime, dispose: () => rm(stateDir, { recursive: true, force: true }) };
}

const columns: SandboxBenchColumn[] = [
  {
    label: "in-process",
    targets: { create: 1.5, exec: 1.3, stream: 0.8 },
    async open() {
      const { runtime, dispose } = await localState();
      return { runtime, close: dispose };
    },
  },
  {
    label: "through gRPC",
    targets: { create: 1.5, exec: 1.5, stream: 0.6 },
    async open() {
      const { runtime: local, dispose } = await localState();
      // A server resolves image references in its own store: here one image, the test rootfs.
      const images = sandboxesFromImages(local, async () => ({
        rootfs: [rootfs],
        env: {},
        workdir: undefined,
      }));
      const server = await listen({
        address: "127.0.0.1:0",
        register: (s) => addService(s, SandboxService, sandboxServiceImpl(images)),
      });
      const { address } = server;
      const transport = createTransport({ address, environment: "bench" });
      return {
        runtime: connectSandboxes({ transport }),
        base: { image: "minbase" },
        async close() {
          transport.close();
          server.close();
          await dispose();
        },
      };
    },
  },
];

const result = await runSandboxBench(columns, {
  rootfs,
  ...(scale
    ? { createRounds: scale, execRounds: scale * 4, streamRounds: Math.max(1, Math.ceil(scale / 2)) }
    : {}),
});
const table = sandboxBenchTable(result);
const runscVersion = execFileSync(defaultRunscPath(), ["--version"], { encoding: "utf8" })
  .split("\n")[0]
  ?.split(" ")
  .at(-1);
const about = `Medians, interleaved with the raw floor in one run on the cached debootstrap minbase rootfs.
Machine: ${cpus().length} cores, Node ${process.version}, runsc ${runscVersion} (pinned build, systrap). Run on ${new Date().toISOString().slice(0, 10)}.
Load average (1, 5, 15 min) at the start: ${loadStart}; at the end: ${loadavg()
  .map((x) => x.toFixed(1))
  .join(", ")} (a shared machine: other work runs beside the bench).
Rerun: \`pnpm --filter @chalk/bench run bench:sandbox\` (as root; \`pnpm bench\` at the root runs it and the volume bench).`;
console.log(`\n${table}\n`);
await writeFile(join(repo, "bench/results/sandbox.md"), `# Sandbox benchmark\n\n${about}\n\n${table}\n`);

// The package README carries the latest table between markers.
const readmePath = join(repo, "packages/sandbox/README.md");
const readme = await readFile(readmePath, "utf8").catch(() => undefined);
const start = "<!-- bench:sandbox -->";
const end = "<!-- /bench:sandbox -->";
if (readme?.includes(start) && readme.includes(end)) {
  const before = readme.slice(0, readme.indexOf(start) + start.length);
  const after = readme.slice(readme.indexOf(end));
  await writeFile(readmePath, `${before}\n${about}\n\n${table}\n${after}`);
}
