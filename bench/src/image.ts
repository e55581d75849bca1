/**
 * Image builder benchmark: what a content-addressed cache buys.
 *
 * - full build: a spec with apt, pip and run steps into an empty store (the Debian base comes from
 *   the machine's bootstrap cache, as in production after the first build on a host);
 * - cache hit: `builder.getOrBuild(image)` of an already-built spec until the image URI is known
 *   (canonical spec, digest, index lookup), absolute and as a ratio to the full build; also through
 *   the gRPC service (`ImageClient.getOrBuild`) on loopback;
 * - rebuild after changing only the last step, as a ratio to the full build.
 * Each for gzip (the default) and plain tar layers. Results go to stdout, bench/results/image.md and
 * the table in packages/image/README.md.
 *
 *   pnpm --filter @chalk/bench run bench:image          (as root)
 *   ROUNDS=1 pnpm --filter @chalk/bench run bench:image (fewer samples)
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Image, ImageClient } from "@chalk/image";
import { ImageBuilder, imageServiceImpl, type LayerCompression } from "@chalk/image/builder";
import { ImageService } from "@chalk/proto/image/v1";
import { addService, createTransport, listen } from "@chalk/rpc";
import { LocalRuntime, RUNSC_VERSION } from "@chalk/sandbox/local";
import { median } from "./stats.js";

const repo = join(import.meta.dirname, "..", "..");
const rounds = Number(process.env.ROUNDS ?? 0) || 3;
const loadStart = loadavg()
  .map((x) => x.toFixed(1))
  .join(", ");
const HIT_RUNS = 200;

const base = Image.debianSlim("3.11").aptInstall(["jq"]).pipInstall(["requests"]);
const spec = (version: number) => base.runCommands(`echo v${version} > /version`);

async function timed<T>(fn: () => Promise<T>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

interface Row {
  compression: LayerCompression;
  fullMs: number;
  hitMs: number;
  hitGrpcMs: number;
  rebuildMs: number;
}

async function measure(compression: LayerCompression): Promise<Row> {
  const dir = await mkdtemp(join(tmpdir(), "chalk-bench-image-"));
  const runtime = new LocalRuntime({ stateDir: join(dir, "sandboxes") });
  // Bootstraps the machine's base for this compression once, outside the measurement.
  const warm = await ImageBuilder.open({
    storeDir: join(dir, "warm"),
    runtime,
    layerCompression: compression,
  });
  await warm.getOrBuild(Image.debianSlim("3.11"));
  await warm.close();

  const full: number[] = [];
  const rebuild: number[] = [];
  const hits: number[] = [];
  const grpcHits: number[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const builder = await ImageBuilder.open({
        storeDir: join(dir, `store-${r}`),
        runtime,
        layerCompression: compression,
      });
      try {
        full.push(await timed(() => builder.getOrBuild(spec(0))));
        for (let i = 0; i < HIT_RUNS; i++) {
          const t = performance.now();
          const info = await builder.getOrBuild(spec(0));
          hits.push(performance.now() - t);
          if (info.status !== "exists" || !info.imageUri) throw new Error("expected a cache hit");
        }
        rebuild.push(await timed(() => builder.getOrBuild(spec(r + 1))));
        const { server, address } = await listen({
          address: "127.0.0.1:0",
          register: (s) => addService(s, ImageService, imageServiceImpl(builder)),
        });
        const transport = createTransport({ address, environment: "bench" });
        try {
          const client = new ImageClient({ transport });
          await client.getOrBuild(spec(0));
          for (let i = 0; i < HIT_RUNS; i++) grpcHits.push(await timed(() => client.getOrBuild(spec(0))));
        } finally {
          transport.close();
          server.forceShutdown();
        }
      } finally {
        await builder.close();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return {
    compression,
    fullMs: median(full),
    hitMs: median(hits),
    hitGrpcMs: median(grpcHits),
    rebuildMs: median(rebuild),
  };
}

const rows: Row[] = [];
for (const c of ["gzip", "tar"] as const) rows.push(await measure(c));

const s = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(ms < 10 ? 2 : 0)} ms`);
const ratio = (a: number, b: number) => (a / b < 0.01 ? (a / b).toExponential(1) : (a / b).toFixed(2));
const table = [
  "| layers | full build | cache hit (builder) | cache hit (gRPC) | hit / full | rebuild last step | rebuild / full |",
  "|---|---|---|---|---|---|---|",
  ...rows.map(
    (r) =>
      `| ${r.compression} | ${s(r.fullMs)} | ${s(r.hitMs)} | ${s(r.hitGrpcMs)} | ${ratio(r.hitMs, r.fullMs)} | ${s(r.rebuildMs)} | ${ratio(r.rebuildMs, r.fullMs)} |`,
  ),
].join("\n");
const about = `Spec: \`Image.debianSlim("3.11").aptInstall(["jq"]).pipInstall(["requests"]).runCommands("echo vN > /version")\`.
Medians of ${rounds} full builds into an empty store (the Debian base from the machine's bootstrap cache), ${rounds} rebuilds
after changing only the last command, and ${rounds}×${HIT_RUNS} cache hits (\`getOrBuild\` of the built spec until the image
URI is known). Target for a cache hit: under 50 ms.
Machine: ${cpus().length} cores, Node ${process.version}, runsc ${RUNSC_VERSION} (pinned build; build steps run in its sandboxes, netstack networking). Run on ${new Date().toISOString().slice(0, 10)}.
Load average (1, 5, 15 min) at the start: ${loadStart}; at the end: ${loadavg()
  .map((x) => x.toFixed(1))
  .join(", ")} (a shared machine).
Rerun: \`pnpm --filter @chalk/bench run bench:image\` (as root).`;
console.log(`\n${about}\n\n${table}\n`);
await writeFile(join(repo, "bench/results/image.md"), `# Image builder benchmark\n\n${about}\n\n${table}\n`);

const readmePath = join(repo, "packages/image/README.md");
const readme = await readFile(readmePath, "utf8").catch(() => undefined);
const start = "<!-- bench:image -->";
const end = "<!-- /bench:image -->";
if (readme?.includes(start) && readme.includes(end)) {
  const before = readme.slice(0, readme.indexOf(start) + start.length);
  const after = readme.slice(readme.indexOf(end));
  await writeFile(readmePath, `${before}\n${about}\n\n${table}\n${after}`);
}
