import type { ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createReadStream, readFileSync } from "node:fs";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { expect, test } from "vitest";
import { spawnTs, tempRoot } from "./helpers.js";

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;
const fixtures = join(import.meta.dirname, "fixtures");

function procStatus(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) * 1024;
}

async function firstLine(child: ChildProcess): Promise<string> {
  if (!child.stdout) throw new Error("child has no stdout");
  const lines = createInterface({ input: child.stdout });
  const exited = once(child, "exit").then(([code]) => {
    throw new Error(`child exited with ${code} before printing`);
  });
  const line = once(lines, "line").then(([l]) => l as string);
  return Promise.race([line, exited]);
}

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

test("a 1 GiB file makes the round trip through gRPC with bounded memory in client and server", {
  timeout: 600_000,
}, async () => {
  const root = await tempRoot();
  const children: ChildProcess[] = [];
  try {
    const input = join(root, "in.bin");
    const output = join(root, "out.bin");
    // 1 GiB of random 4 MiB blocks, each stamped with its index so misordering shows.
    const fh = await open(input, "w");
    const block = randomBytes(4 * MiB);
    for (let i = 0; i < GiB / block.byteLength; i++) {
      block.writeUInt32BE(i, 0);
      await fh.write(block);
    }
    await fh.close();

    const server = spawnTs(join(fixtures, "volume-server.ts"), [join(root, "data")], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(server);
    const { address } = JSON.parse(await firstLine(server)) as { address: string };
    const serverBaseline = procStatus(server.pid!, "VmRSS");

    const client = spawnTs(join(fixtures, "roundtrip-client.ts"), [address, "big", input, output], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(client);
    const report = JSON.parse(await firstLine(client)) as {
      baselineRssBytes: number;
      peakRssBytes: number;
      uploadSecs: number;
      downloadSecs: number;
    };
    await once(client, "exit");
    const serverPeak = procStatus(server.pid!, "VmHWM");

    const mib = (n: number) => `${(n / MiB).toFixed(0)} MiB`;
    console.log(
      `1 GiB round trip: upload ${report.uploadSecs.toFixed(1)} s (${(1024 / report.uploadSecs).toFixed(0)} MiB/s), ` +
        `download ${report.downloadSecs.toFixed(1)} s (${(1024 / report.downloadSecs).toFixed(0)} MiB/s); ` +
        `client RSS ${mib(report.baselineRssBytes)} -> peak ${mib(report.peakRssBytes)}; ` +
        `server RSS ${mib(serverBaseline)} -> peak ${mib(serverPeak)}`,
    );
    expect(await sha256(output)).toBe(await sha256(input));
    expect(report.peakRssBytes - report.baselineRssBytes).toBeLessThan(300 * MiB);
    expect(serverPeak - serverBaseline).toBeLessThan(300 * MiB);
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await rm(root, { recursive: true, force: true });
  }
});
