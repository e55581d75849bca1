/**
 * Volume throughput through the real gRPC server, as a ratio to a plain local file copy of the same
 * size measured in the same run.
 *
 *   pnpm --filter @chalk/bench run bench:volume
 *
 * The server runs in a child process (this file with `serve <dataDir>`), so client and server each
 * get their own event loop, as in production. For each size (1 MiB, 256 MiB) it measures the median
 * of several runs of:
 * - copy: a local file copy in user space (read stream → write stream, then fsync), the floor;
 * - putFile: `vol.putFile(path, bytes)` from memory (the server writes, fsyncs, renames);
 * - putFileFromPath: the same from a local file, streamed;
 * - readFile: `vol.readFile(path)` into memory;
 * - readFileToPath: the same into a local file, streamed.
 * Results go to stdout and bench/results/volume.md.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { VolumeService } from "@chalk/proto/volume/v1";
import { addService, createTransport, listen } from "@chalk/rpc";
import { Volume } from "@chalk/volume";
import { VolumeStore, volumeServiceImpl } from "@chalk/volume/host";
import { median } from "./stats.js";

const MiB = 1024 * 1024;
const SIZES = [
  { bytes: 1 * MiB, runs: 20 },
  { bytes: 256 * MiB, runs: 3 },
];

async function serve(dataDir: string): Promise<void> {
  const store = await VolumeStore.open({ dataDir });
  const server = await listen({
    address: "127.0.0.1:0",
    register: (s) => addService(s, VolumeService, volumeServiceImpl(store)),
  });
  const { address } = server;
  process.stdout.write(`${JSON.stringify({ address })}\n`);
  process.once("SIGTERM", () => {
    server.close();
    void store.close().then(() => process.exit(0));
  });
}

async function timed(runs: number, fn: (i: number) => Promise<void>): Promise<number> {
  const secs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn(i);
    secs.push((performance.now() - t) / 1000);
  }
  return median(secs);
}

async function localCopy(src: string, dest: string): Promise<void> {
  await pipeline(createReadStream(src, { highWaterMark: 256 * 1024 }), createWriteStream(dest));
  const fh = await open(dest, "r+");
  await fh.sync();
  await fh.close();
}

async function startServer(dataDir: string): Promise<{ child: ChildProcess; address: string }> {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [...process.execArgv, self, "serve", dataDir], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await once(lines, "line")) as [string];
  return { child, address: (JSON.parse(line) as { address: string }).address };
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "chalk-bench-volume-"));
  const { child, address } = await startServer(join(root, "data"));
  const transport = createTransport({ address });
  const rows: string[] = [];
  try {
    const vol = new Volume("bench", { transport });
    await vol.create({ existOk: true });
    for (const { bytes, runs } of SIZES) {
      const data = randomBytes(bytes);
      const src = join(root, `src-${bytes}`);
      await writeFile(src, data);
      const mib = bytes / MiB;
      const copy = await timed(runs, (i) => localCopy(src, join(root, `copy-${i}`)));
      const put = await timed(runs, async (i) => {
        await vol.putFile(`put-${i}.bin`, data);
      });
      const putPath = await timed(runs, async (i) => {
        await vol.putFileFromPath(`putpath-${i}.bin`, src);
      });
      const read = await timed(runs, async (i) => {
        const got = await vol.readFile(`put-${i}.bin`);
        if (got.byteLength !== bytes) throw new Error("short read");
      });
      const readPath = await timed(runs, async (i) => {
        await vol.readFileToPath(`putpath-${i}.bin`, join(root, `down-${bytes}-${i}`));
      });
      for (let i = 0; i < runs; i++) await rm(join(root, `copy-${i}`), { force: true });
      const rate = (secs: number) => `${(mib / secs).toFixed(0)} MiB/s`;
      const cell = (secs: number) => `${rate(secs)} (${(copy / secs).toFixed(2)}×)`;
      rows.push(
        `| ${mib} MiB | ${runs} | ${rate(copy)} | ${cell(put)} | ${cell(putPath)} | ${cell(read)} | ${cell(readPath)} |`,
      );
      await vol.delete();
      await vol.create();
    }
  } finally {
    transport.close();
    child.kill("SIGTERM");
    await once(child, "exit");
    await rm(root, { recursive: true, force: true });
  }
  const table = [
    "| size | runs | local copy | putFile | putFileFromPath | readFile | readFileToPath |",
    "|---|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
  const report = `# Volume throughput

Medians through the real gRPC server on 127.0.0.1 (server in its own process), as MiB/s and as a
ratio to a plain local file copy of the same size in the same run (read stream → write stream →
fsync; higher ratio is better, 1.00× equals the copy). putFile also fsyncs and renames on the
server.

Machine: ${(await import("node:os")).cpus().length} cores, Node ${process.version}. Run on ${new Date().toISOString().slice(0, 10)}.
Rerun: \`pnpm --filter @chalk/bench run bench:volume\`.

${table}
`;
  const out = join(dirname(fileURLToPath(import.meta.url)), "..", "results", "volume.md");
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, report);
  process.stdout.write(`${report}\nwritten to ${out}\n`);
}

if (process.argv[2] === "serve") await serve(process.argv[3]!);
else await main();
