/**
 * A container's kept log reads back in order across its two files, follows a rotation (the log
 * writer renames the log to `.1` and starts a new one), and --tail takes the last lines from both.
 * The size bound itself is the log writer's: packages/sandbox/test/init-log.test.ts.
 */
import { appendFile, mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, test } from "vitest";
import { LocalLogStore } from "../src/local/local-logs.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A log store in a new directory, and the path of container "c"'s log. */
async function store(): Promise<{ logs: LocalLogStore; path: string }> {
  const dir = await mkdtemp(join(tmpdir(), "chalk-logs-"));
  dirs.push(dir);
  const logs = new LocalLogStore(dir, 1024);
  return { logs, path: logs.path("c") };
}

async function readAll(
  logs: LocalLogStore,
  options: { follow?: boolean; done?: () => boolean; tailLines?: number } = {},
): Promise<string> {
  let out = "";
  const ac = new AbortController();
  for await (const chunk of logs.read("c", {
    follow: options.follow ?? false,
    done: options.done ?? (() => true),
    signal: ac.signal,
    pollMs: 10,
    ...(options.tailLines ? { tailLines: options.tailLines } : {}),
  })) {
    out += Buffer.from(chunk).toString();
  }
  return out;
}

describe("container logs", () => {
  test("the rotated older half, then the current file", async () => {
    const { logs, path } = await store();
    await appendFile(`${path}.1`, "a".repeat(100));
    await appendFile(path, "b".repeat(10));
    expect(await readAll(logs)).toBe(`${"a".repeat(100)}${"b".repeat(10)}`);
  });

  test("a missing log reads as empty", async () => {
    const { logs } = await store();
    expect(await readAll(logs)).toBe("");
  });

  test("following picks up appends and rotations until the writer is done", async () => {
    const { logs, path } = await store();
    await appendFile(path, "first\n");
    let finished = false;
    const reading = readAll(logs, { follow: true, done: () => finished });
    await new Promise((r) => setTimeout(r, 50));
    await appendFile(path, "second\n");
    await new Promise((r) => setTimeout(r, 50));
    await rename(path, `${path}.1`);
    await appendFile(path, "third\n");
    await new Promise((r) => setTimeout(r, 50));
    finished = true;
    expect(await reading).toBe("first\nsecond\nthird\n");
  });
});

/** The last `n` lines of `text` as `tail -n` prints them (a final line without a newline counts). */
function referenceTail(text: string, n: number): string {
  const lines = text.split(/(?<=\n)/);
  return lines.slice(Math.max(0, lines.length - n)).join("");
}

describe("container logs: --tail", () => {
  test("the last N lines come from both halves, whatever the split and the line lengths", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ unit: fc.constantFrom("a", "b", "\n"), maxLength: 200 }), { maxLength: 4 }),
        fc.string({ unit: fc.constantFrom("x", "\n"), maxLength: 150_000 }),
        fc.integer({ min: 1, max: 40 }),
        async (olds, current, n) => {
          const { logs, path } = await store();
          const old = olds.join("");
          if (old) await appendFile(`${path}.1`, old);
          if (current) await appendFile(path, current);
          expect(await readAll(logs, { tailLines: n })).toBe(referenceTail(old + current, n));
        },
      ),
      { numRuns: 150 },
    );
  });

  test("following with a tail starts at the last lines, then carries new output", async () => {
    const { logs, path } = await store();
    await appendFile(path, "one\ntwo\nthree\n");
    let finished = false;
    const reading = readAll(logs, { follow: true, done: () => finished, tailLines: 2 });
    await new Promise((r) => setTimeout(r, 50));
    await appendFile(path, "four\n");
    await new Promise((r) => setTimeout(r, 50));
    finished = true;
    expect(await reading).toBe("two\nthree\nfour\n");
  });
});
