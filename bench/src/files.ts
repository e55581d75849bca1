/**
 * The files API (`c.fs`) against `exec cat`, through the same server and SDK, measured in the same
 * run, interleaved one transfer at a time:
 *
 *   pnpm --filter @chalk/bench run bench:files
 *
 * - 1 MiB: `c.fs.readFile` vs `c.exec("cat", path)`; `c.fs.writeFile` vs `c.exec("sh", "-c",
 *   "cat > path", { stdin })`.
 * - 256 MiB: `c.fs.readStream` vs `c.sandbox.spawn(["cat", path])` read to the end;
 *   `c.fs.writeFile` of a stream vs `spawn(["sh", "-c", "cat > path"])` fed through stdin.
 * Medians of milliseconds. Results go to stdout and bench/results/files.md.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Container } from "@chalk/container";
import { removeDataDir, startServerProcess } from "@chalk/server/testing";
import { loadAverage, minbaseServerArgs, repoRoot } from "./server-bench.js";
import { median } from "./stats.js";

const MiB = 1024 * 1024;
const SMALL_ROUNDS = 15;
const LARGE_ROUNDS = 3;
const LARGE_MIB = 256;

const time = async (f: () => Promise<unknown>) => {
  const t = performance.now();
  await f();
  return performance.now() - t;
};

/** 256 MiB as 1 MiB chunks of one random block (the content does not matter to either path). */
async function* large(block: Buffer) {
  for (let i = 0; i < LARGE_MIB; i++) yield block;
}

async function spawnRead(c: Container, path: string): Promise<number> {
  const proc = await c.sandbox.spawn(["cat", path]);
  let n = 0;
  for await (const chunk of proc.stdout) n += chunk.byteLength;
  await proc.wait();
  return n;
}

async function spawnWrite(c: Container, path: string, block: Buffer): Promise<void> {
  const proc = await c.sandbox.spawn(["sh", "-c", `cat > ${path}`]);
  const drain = (async () => {
    for await (const _ of proc.stdout) {
      // nothing is written
    }
  })();
  for await (const chunk of large(block)) await proc.stdin.write(chunk);
  await proc.stdin.end();
  await proc.wait();
  await drain;
}

async function main(): Promise<void> {
  const loadStart = loadAverage();
  const server = await startServerProcess({ args: minbaseServerArgs() });
  let c: Container | undefined;
  try {
    c = await new Container({
      image: "minbase",
      name: "bench-files",
      memory: "2Gi",
      transport: server.transport(),
    }).run();
    const small = randomBytes(MiB);
    const block = randomBytes(MiB);
    // Warm both paths (the files agent starts on first use).
    await c.fs.writeFile("/tmp/small", small);
    await c.exec("cat", "/tmp/small");
    const r = {
      fsRead: [] as number[],
      catRead: [] as number[],
      fsWrite: [] as number[],
      catWrite: [] as number[],
    };
    for (let i = 0; i < SMALL_ROUNDS; i++) {
      const cc = c;
      r.fsWrite.push(await time(() => cc.fs.writeFile("/tmp/small", small)));
      r.catWrite.push(await time(() => cc.exec("sh", "-c", "cat > /tmp/small2", { stdin: small })));
      r.fsRead.push(await time(() => cc.fs.readFile("/tmp/small")));
      r.catRead.push(await time(() => cc.exec("cat", "/tmp/small2")));
    }
    const l = {
      fsRead: [] as number[],
      catRead: [] as number[],
      fsWrite: [] as number[],
      catWrite: [] as number[],
    };
    for (let i = 0; i < LARGE_ROUNDS; i++) {
      const cc = c;
      l.fsWrite.push(await time(() => cc.fs.writeFile("/tmp/large", large(block))));
      l.catWrite.push(await time(() => spawnWrite(cc, "/tmp/large2", block)));
      l.fsRead.push(
        await time(async () => {
          let n = 0;
          for await (const chunk of cc.fs.readStream("/tmp/large")) n += chunk.byteLength;
          if (n !== LARGE_MIB * MiB) throw new Error(`read ${n} bytes`);
        }),
      );
      l.catRead.push(
        await time(async () => {
          const n = await spawnRead(cc, "/tmp/large2");
          if (n !== LARGE_MIB * MiB) throw new Error(`cat read ${n} bytes`);
        }),
      );
    }
    const row = (what: string, fs: number[], cat: number[], mib: number) => {
      const a = median(fs);
      const b = median(cat);
      return `| ${what} | ${b.toFixed(0)} ms (${(mib / (b / 1000)).toFixed(0)} MiB/s) | ${a.toFixed(0)} ms (${(mib / (a / 1000)).toFixed(0)} MiB/s) | ${(a / b).toFixed(2)}× |`;
    };
    const table = [
      "| transfer | `exec cat` (median) | `c.fs` (median) | time ratio (c.fs / cat) |",
      "|---|---|---|---|",
      row(`read 1 MiB (${SMALL_ROUNDS} rounds)`, r.fsRead, r.catRead, 1),
      row(`write 1 MiB (${SMALL_ROUNDS} rounds)`, r.fsWrite, r.catWrite, 1),
      row(`read ${LARGE_MIB} MiB, streamed (${LARGE_ROUNDS} rounds)`, l.fsRead, l.catRead, LARGE_MIB),
      row(`write ${LARGE_MIB} MiB, streamed (${LARGE_ROUNDS} rounds)`, l.fsWrite, l.catWrite, LARGE_MIB),
    ].join("\n");
    console.log(table);
    writeFileSync(
      join(repoRoot, "bench/results/files.md"),
      `# Files API vs exec cat

\`c.fs\` (the files agent inside the container, one process per container, over the server) against
\`exec cat\` through the same server and SDK (1 MiB: buffered \`c.exec\`; ${LARGE_MIB} MiB: a streamed
\`c.sandbox.spawn\`), measured in the same run, interleaved one transfer at a time. Medians. A time
ratio under 1 means the files API is faster.

Machine: 2 cores, Node ${process.version}. Run on ${new Date().toISOString().slice(0, 10)}.
Load average (1, 5, 15 min) at the start: ${loadStart}; at the end: ${loadAverage()} (a shared machine).
Rerun: \`pnpm --filter @chalk/bench run bench:files\`.

${table}
`,
    );
  } finally {
    await c?.stop().catch(() => undefined);
    await server.kill();
    await removeDataDir(server.dataDir);
  }
}

await main();
