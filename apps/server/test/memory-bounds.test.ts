/**
 * The server's memory stays bounded under issue 8's three memory attacks (finding 6), measured as
 * the server process's resident set (VmRSS) on a real server with real gVisor:
 *
 * 1. a RunContainer caller that stops reading while a build step prints 400 MB;
 * 2. 100 ExecContainer calls with 4 MiB of stdin each while the exec slots are full;
 * 3. 80 SandboxService.Exec streams at once.
 *
 * Each prints its figures (baseline, peak, after) for the README's Security section, and asserts its
 * bound. The bounds asserted are on memory and process counts, never on time.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { Image } from "@chalk/image";
import { ContainerService, ContainerStatus } from "@chalk/proto/container/v1";
import { createClient } from "@chalk/rpc";
import { connectSandboxes, type Process } from "@chalk/sandbox";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { removeDataDir, type ServerProcess, startServerProcess } from "../src/server-process.js";

const MiB = 1024 * 1024;
const rootfs = execFileSync("bash", [join(import.meta.dirname, "../../../tooling/scripts/rootfs.sh")], {
  encoding: "utf8",
}).trim();

let server: ServerProcess;
const figures: Record<string, { baselineMiB: number; peakMiB: number; afterMiB: number }> = {};

beforeAll(async () => {
  server = await startServerProcess({
    args: [
      "--images-dir",
      "/var/cache/chalk/images",
      "--rootfs-image",
      `minbase=${rootfs}`,
      "--max-concurrent-execs",
      "8",
      "--default-memory",
      "256Mi",
      "--metrics-listen",
      "127.0.0.1:0",
    ],
  });
});

afterAll(async () => {
  if (!server) return;
  const client = createClient(ContainerService, server.transport());
  for (const c of (await client.listContainers({}).catch(() => ({ containers: [] }))).containers) {
    await client.stopContainer({ ref: { case: "id", value: c.id } }).catch(() => undefined);
  }
  for (const s of await connectSandboxes({ transport: server.transport() })
    .list()
    .catch(() => [])) {
    await (await connectSandboxes({ transport: server.transport() }).get(s.id)).stop().catch(() => undefined);
  }
  await server.kill();
  await removeDataDir(server.dataDir);
  console.log(`memory figures (server VmRSS, MiB): ${JSON.stringify(figures)}`);
});

/** The server's resident set, in bytes. */
function rss(): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${server.pid}/status`, "utf8"));
  return Number(m?.[1]) * 1024;
}

/** Samples the server's RSS every 100 ms while `work` runs; the peak. */
async function peakDuring<T>(work: () => Promise<T>): Promise<{ value: T; peak: number }> {
  let peak = rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, rss());
  }, 100);
  try {
    const value = await work();
    return { value, peak: Math.max(peak, rss()) };
  } finally {
    clearInterval(timer);
  }
}

/** Waits for a condition by polling (no time limit of its own: the test's timeout is the bound). */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 200));
}

/** Execs waiting for a slot, from the server's metrics. */
async function queuedExecs(): Promise<number> {
  const body = await server.metricsText();
  return Number(/^chalk_exec_slots\{state="queued"\} (\d+)$/m.exec(body)?.[1] ?? Number.NaN);
}

const record = (name: string, baseline: number, peak: number, after: number) => {
  figures[name] = {
    baselineMiB: Math.round(baseline / MiB),
    peakMiB: Math.round(peak / MiB),
    afterMiB: Math.round(after / MiB),
  };
};

describe("server memory under the three attacks", () => {
  test("a RunContainer caller that stops reading while a build step prints 400 MB", async () => {
    const client = createClient(ContainerService, server.transport());
    const nonce = Math.random().toString(36).slice(2);
    // 400 MB of output in 100-byte lines, after a line that makes the spec new each run.
    const image = Image.debianSlim("3.11").runCommands(
      `echo ${nonce}; head -c 400000000 /dev/zero | tr '\\0' x | fold -w 99`,
    );
    const name = `loud-${nonce.slice(0, 6)}`;
    const baseline = rss();
    const ac = new AbortController();
    const { peak } = await peakDuring(async () => {
      const stream = client.runContainer(
        { spec: { name, image: { source: { case: "spec", value: await image.toSpecBytes() } } } },
        { signal: ac.signal },
      );
      const iterator = stream[Symbol.asyncIterator]();
      await iterator.next(); // the accepted container; then this caller reads nothing more
      // The build runs and the container starts while nobody reads the stream.
      await until(async () => {
        const c = (await client.getContainer({ ref: { case: "name", value: name } })).container;
        return c !== undefined && c.status !== ContainerStatus.PENDING;
      });
      ac.abort();
      await iterator.return?.();
    });
    const got = (await client.getContainer({ ref: { case: "name", value: name } })).container;
    expect(got?.status).toBe(ContainerStatus.RUNNING);
    await client.stopContainer({ ref: { case: "name", value: name } });
    const after = rss();
    record("runContainerSlowReader400MB", baseline, peak, after);
    // 397 MiB before the bound, kept after the cancel; the run's queue keeps 1 MiB per reader. The
    // peak is V8's: the dropped lines are garbage, and under load some are promoted to the old space
    // before a scavenge frees them. Measured on the merged tree: +9 to +187 MiB over 400 MB of output
    // (bimodal, by GC timing). The bound asserted is well below what an unbounded queue takes.
    expect(peak - baseline).toBeLessThan(256 * MiB);
  });

  test("100 ExecContainer calls with 4 MiB of stdin each while the slots are full", async () => {
    const client = createClient(ContainerService, server.transport());
    const name = `stdin-${Math.random().toString(36).slice(2, 8)}`;
    for await (const _ of client.runContainer({
      spec: { name, image: { source: { case: "uri", value: "minbase" } } },
    })) {
      // until Running
    }
    const sandboxes = connectSandboxes({ transport: server.transport() });
    const id = (await client.getContainer({ ref: { case: "name", value: name } })).container?.id as string;
    const sandbox = await sandboxes.get(id);
    // Hold the container's share of the slots (4 of 8: half the server's).
    const held: Process[] = [];
    for (let i = 0; i < 4; i++) held.push(await sandbox.spawn(["sleep", "3600"], { timeoutSecs: 3600 }));
    const stdin = new Uint8Array(4 * MiB).fill(120);
    const baseline = rss();
    let refusedSoFar = 0;
    let queuedAtMost = 0;
    const { value: outcomes, peak } = await peakDuring(async () => {
      const calls = Array.from({ length: 100 }, () =>
        client.execContainer({ ref: { case: "name", value: name }, command: ["wc", "-c"], stdin }).then(
          () => "ran",
          (err: unknown) => {
            refusedSoFar++;
            return ChalkError.from(err).code;
          },
        ),
      );
      // Every call has arrived once each is refused or waiting; then the slots are freed.
      await until(async () => {
        const queued = await queuedExecs();
        queuedAtMost = Math.max(queuedAtMost, queued);
        return refusedSoFar + queued === 100;
      });
      for (const p of held) await p.signal("SIGKILL");
      return Promise.all(calls);
    });
    const after = rss();
    record("execQueue100x4MiBStdin", baseline, peak, after);
    const refused = outcomes.filter((o) => o === Code.ResourceExhausted).length;
    const ran = outcomes.filter((o) => o === "ran").length;
    expect(ran + refused).toBe(100);
    expect(refused).toBeGreaterThan(0);
    // The queue held at most --max-queued-exec-stdin-bytes (64 MiB: 16 of these calls) and refused
    // the rest at once, with resource_exhausted; the ones it held ran once slots were free.
    expect(queuedAtMost).toBeLessThanOrEqual(16);
    expect(ran).toBe(queuedAtMost);
    expect(refused).toBe(100 - queuedAtMost);
    // grpc-js reads a unary request in full before its handler runs; the per-connection read budget
    // (--max-unary-reads-per-connection, 4) lets only 4 of these bodies arrive at once. Without it
    // all 100 arrive together: +560 to +619 MiB in six runs. With it: +201 to +269 MiB, which is the
    // queue's 64 MiB of stdin, 4 bodies arriving, and the refused calls' bodies not yet collected.
    expect(peak - baseline).toBeLessThan(384 * MiB);
    await client.stopContainer({ ref: { case: "name", value: name } });
  });

  test("80 SandboxService.Exec streams at once start at most --max-concurrent-execs runsc processes", async () => {
    const sandboxes = connectSandboxes({ transport: server.transport() });
    const s = await sandboxes.create({ image: "minbase" });
    try {
      const baseline = rss();
      // runsc processes (not their sh wrappers) that exec in this sandbox.
      const runscExecs = () =>
        execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
          .split("\n")
          .filter((a) => /^\S*\/runsc /.test(a) && / exec /.test(a) && a.includes(s.id)).length;
      let maxProcs = 0;
      const { peak } = await peakDuring(async () => {
        const procs = Array.from({ length: 80 }, () => s.spawn(["sleep", "3600"], { timeoutSecs: 3600 }));
        // Those still queued when the sandbox stops are refused (it is not running): expected.
        const ended = Promise.allSettled(procs);
        // The first ones start; the rest wait in the queue (or are refused when it is full).
        await procs[0];
        for (let i = 0; i < 20; i++) {
          maxProcs = Math.max(maxProcs, runscExecs());
          await new Promise((r) => setTimeout(r, 100));
        }
        await s.stop();
        await ended;
      });
      const after = rss();
      record("sandboxExec80Streams", baseline, peak, after);
      // 83 runsc processes before the bound; a sandbox is one container: half of the 8 slots.
      expect(maxProcs).toBeGreaterThan(0);
      expect(maxProcs).toBeLessThanOrEqual(4);
    } finally {
      await s.stop().catch(() => undefined);
    }
  });
});
