/**
 * Port forwarding throughput: a 100 MiB HTTP download from a container through `c.forward(port)`
 * (one PortForward gRPC stream through the server), over plaintext loopback and over TLS, against
 * the floor of the same download straight from the container's address, measured in the same run,
 * interleaved one download at a time:
 *
 *   pnpm --filter @chalk/bench run bench:port-forward
 *
 * Medians of MiB/s. Results go to stdout and bench/results/port-forward.md.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Container } from "@chalk/container";
import { removeDataDir, type ServerProcess, startServerProcess } from "@chalk/server/testing";
import {
  download,
  FORWARD_ENTRYPOINT,
  FORWARD_PORT,
} from "../../packages/container/test/port-forward-server.ts";
import { loadAverage, minbaseServerArgs, repoRoot } from "./server-bench.js";
import { median } from "./stats.js";

const ROUNDS = 5;
const SIZE_MIB = 100;

async function mibPerSec(address: string): Promise<number> {
  const t = performance.now();
  const r = await download(address, "/tmp/blob");
  if (r.bytes !== SIZE_MIB * 1024 * 1024) throw new Error(`got ${r.bytes} bytes from ${address}`);
  return SIZE_MIB / ((performance.now() - t) / 1000);
}

async function forwardServer(server: ServerProcess, name: string): Promise<Container> {
  const c = await new Container({
    image: "minbase",
    name,
    port: FORWARD_PORT,
    memory: "1Gi",
    entrypoint: FORWARD_ENTRYPOINT,
    readiness: { port: FORWARD_PORT },
    transport: server.transport(),
  }).run();
  await c.exec("sh", "-c", `head -c ${SIZE_MIB * 1024 * 1024} /dev/urandom > /tmp/blob`);
  return c;
}

async function main(): Promise<void> {
  const loadStart = loadAverage();
  const args = minbaseServerArgs();
  const plain = await startServerProcess({ args });
  const tls = await startServerProcess({ args, tls: true });
  const started: Container[] = [];
  try {
    const a = await forwardServer(plain, "bench-forward");
    started.push(a);
    const b = await forwardServer(tls, "bench-forward-tls");
    started.push(b);
    const direct = a.info.address as string;
    const fwdPlain = await a.forward(FORWARD_PORT);
    const fwdTls = await b.forward(FORWARD_PORT);
    const directTls = b.info.address as string;
    const floor: number[] = [];
    const floorTls: number[] = [];
    const viaPlain: number[] = [];
    const viaTls: number[] = [];
    // One warm-up each, then interleaved rounds.
    await mibPerSec(direct);
    await mibPerSec(fwdPlain.address);
    await mibPerSec(fwdTls.address);
    for (let i = 0; i < ROUNDS; i++) {
      floor.push(await mibPerSec(direct));
      viaPlain.push(await mibPerSec(fwdPlain.address));
      floorTls.push(await mibPerSec(directTls));
      viaTls.push(await mibPerSec(fwdTls.address));
    }
    await fwdPlain.close();
    await fwdTls.close();
    const row = (what: string, rate: number, base: number) =>
      `| ${what} | ${base.toFixed(0)} MiB/s | ${rate.toFixed(0)} MiB/s | ${(rate / base).toFixed(2)} |`;
    const table = [
      "| path | direct to the container's address (median) | through `c.forward` (median) | ratio |",
      "|---|---|---|---|",
      row(
        `${SIZE_MIB} MiB download, plaintext gRPC on loopback (${ROUNDS} rounds)`,
        median(viaPlain),
        median(floor),
      ),
      row(
        `${SIZE_MIB} MiB download, gRPC over TLS on loopback (${ROUNDS} rounds)`,
        median(viaTls),
        median(floorTls),
      ),
    ].join("\n");
    console.log(table);
    const md = `# Port forwarding throughput

A ${SIZE_MIB} MiB HTTP download (a perl server inside the container sending a file of random
bytes) through \`c.forward(port)\` (the SDK's local listener, one PortForward gRPC stream through
the server, the server's TCP connection to the container's address), against the same download
straight from the container's address (the floor), measured in the same run, interleaved one
download at a time. Medians. The ratio is forwarded / direct throughput (1.00: as fast).

Machine: 2 cores, Node ${process.version}. Run on ${new Date().toISOString().slice(0, 10)}.
Load average (1, 5, 15 min) at the start: ${loadStart}; at the end: ${loadAverage()} (a shared machine).
Rerun: \`pnpm --filter @chalk/bench run bench:port-forward\`.

${table}
`;
    writeFileSync(join(repoRoot, "bench/results/port-forward.md"), md);
  } finally {
    for (const c of started) await c.stop().catch(() => undefined);
    for (const s of [plain, tls]) {
      await s.kill();
      await removeDataDir(s.dataDir);
    }
  }
}

await main();
