import { statSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Sandbox } from "../src/index.js";
import { DEFAULT_LOG_MAX_BYTES, LocalRuntime, readInitLog, rotatedLogPath } from "../src/local/index.js";
import { testRootfs } from "./behaviour.js";

const rootfs = testRootfs();
const MiB = 1024 * 1024;
let dir: string;
let runtime: LocalRuntime;
const made: Sandbox[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "chalk-sbx-initlog-"));
  runtime = new LocalRuntime({ stateDir: join(dir, "state") });
});

afterAll(async () => {
  for (const s of made) await s.stop().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

async function create(options: Partial<Parameters<LocalRuntime["create"]>[0]>): Promise<Sandbox> {
  const s = await runtime.create({ rootfs, ...options });
  made.push(s);
  return s;
}

/** Bytes the log and its rotated half hold on disk right now. */
function logBytes(logPath: string): number {
  const size = (p: string) => {
    try {
      return statSync(p).size;
    } catch {
      return 0;
    }
  };
  return size(logPath) + size(rotatedLogPath(logPath));
}

/** Checks that `text` is consecutive numbered lines ending with `last` (nothing lost or doubled). */
function expectConsecutiveTail(text: string, last: number): void {
  const lines = text.split("\n");
  expect(lines.at(-1)).toBe(""); // ends with a newline
  const numbers = lines.slice(1, -1).map(Number); // the first line may be cut by the bound
  expect(numbers.at(-1)).toBe(last);
  const gaps = numbers.filter((n, i) => i > 0 && n !== (numbers[i - 1] as number) + 1);
  expect(gaps).toEqual([]);
}

describe("the init's log is bounded by its writer, at every moment", () => {
  test("`yes` for 8 s: log + log.1 never exceed 2 × logMaxBytes, sampled every few ms", async () => {
    const logPath = join(dir, "yes.log");
    const max = MiB;
    const sandbox = await create({
      command: ["sh", "-c", "timeout 8 yes; echo done"],
      logPath,
      logMaxBytes: max,
    });
    const samples: number[] = [];
    const ended = sandbox.wait();
    let finished = false;
    void ended.then(() => {
      finished = true;
    });
    while (!finished) {
      samples.push(logBytes(logPath));
      await sleep(2);
    }
    samples.push(logBytes(logPath));
    const peak = Math.max(...samples);
    console.log(
      `[init log] ${samples.length} samples over 8 s of yes: peak ${peak} bytes (bound ${2 * max}), last ${samples.at(-1)}`,
    );
    expect(samples.length).toBeGreaterThan(200);
    expect(peak).toBeLessThanOrEqual(2 * max);
    // The writer kept up: the log is full and holds the newest output.
    expect(peak).toBeGreaterThan(max);
    const text = await readFile(logPath, "utf8");
    expect(text.endsWith("y\ndone\n")).toBe(true);
  });

  test("a finished sandbox's log keeps the bound and is the newest output, with no gap at rotations", async () => {
    const logPath = join(dir, "seq.log");
    const sandbox = await create({ command: ["seq", "1", "400000"], logPath, logMaxBytes: 256 * 1024 });
    await sandbox.wait();
    expect(logBytes(logPath)).toBeLessThanOrEqual(512 * 1024);
    const whole = Buffer.concat([
      await readFile(rotatedLogPath(logPath)),
      await readFile(logPath),
    ]).toString();
    expectConsecutiveTail(whole, 400000);
    // Stopping the sandbox keeps its log.
    await sandbox.stop();
    expect(logBytes(logPath)).toBeGreaterThan(0);
  });

  test("a follower reads everything, in order, across rotations, and sees the newest output", async () => {
    const logPath = join(dir, "follow.log");
    // Output at a pace a follower keeps up with (a pause every 500 lines), through many
    // rotations of a small file.
    const sandbox = await create({
      command: [
        "sh",
        "-c",
        "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); echo $i; [ $((i % 500)) -eq 0 ] && sleep 0.05; done; true",
      ],
      logPath,
      logMaxBytes: 8 * 1024,
    });
    let done = false;
    void sandbox.wait().then(() => {
      done = true;
    });
    const chunks: Uint8Array[] = [];
    for await (const c of readInitLog(logPath, { follow: true, done: () => done, pollMs: 5 })) chunks.push(c);
    const text = Buffer.concat(chunks).toString();
    // A follower from the start keeps up: everything, from 1, nothing lost or doubled.
    expect(text.startsWith("1\n2\n3\n")).toBe(true);
    expectConsecutiveTail(text, 30000);
  });

  test("without logMaxBytes the bound is the default, 8 MiB per file", async () => {
    expect(DEFAULT_LOG_MAX_BYTES).toBe(8 * MiB);
    const logPath = join(dir, "default.log");
    const sandbox = await create({
      command: ["sh", "-c", "head -c 20000000 /dev/zero | tr '\\0' z"],
      logPath,
    });
    await sandbox.wait();
    expect(statSync(logPath).size).toBeLessThanOrEqual(8 * MiB);
    expect(statSync(rotatedLogPath(logPath)).size).toBe(8 * MiB);
  });

  test("a bad logMaxBytes is refused before any work", async () => {
    for (const logMaxBytes of [0, 100, 1.5, -1]) {
      const err = await create({ logPath: join(dir, "bad.log"), logMaxBytes }).catch((e) => e);
      expect(err).toMatchObject({ code: 3 });
      expect(String(err.message)).toMatch(/logMaxBytes/);
    }
  });
});
