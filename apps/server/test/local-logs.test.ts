/** A container's log file stays under its size bound, keeps the newest output, and follows across rotations. */
import { appendFile, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, test } from "vitest";
import { readLog, rotatedPath, rotateLog } from "../src/local/local-logs.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function logFile(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "chalk-logs-"));
  dirs.push(dir);
  return join(dir, "c.log");
}

async function readAll(path: string, follow = false, done = () => true): Promise<string> {
  let out = "";
  const ac = new AbortController();
  for await (const chunk of readLog(path, { follow, done, signal: ac.signal, pollMs: 10 })) {
    out += Buffer.from(chunk).toString();
  }
  return out;
}

describe("container logs", () => {
  test("a log over its bound moves to .1 and starts again; reading returns both halves in order", async () => {
    const path = await logFile();
    await appendFile(path, "a".repeat(100));
    expect(await rotateLog(path, 50)).toBe(true);
    await appendFile(path, "b".repeat(10));
    expect((await stat(path)).size).toBe(10);
    expect(await readFile(rotatedPath(path), "utf8")).toBe("a".repeat(100));
    expect(await readAll(path)).toBe(`${"a".repeat(100)}${"b".repeat(10)}`);
    expect(await rotateLog(path, 50)).toBe(false);
  });

  test("at most twice the bound stays on disk, the newest output", async () => {
    const path = await logFile();
    for (let i = 0; i < 10; i++) {
      await appendFile(path, `${i}`.repeat(40));
      await rotateLog(path, 50);
    }
    const total = (await stat(path)).size + (await stat(rotatedPath(path))).size;
    expect(total).toBeLessThanOrEqual(100);
    expect((await readAll(path)).endsWith("9".repeat(40))).toBe(true);
  });

  test("a missing log reads as empty", async () => {
    expect(await readAll(await logFile())).toBe("");
  });

  test("following picks up appends and rotations until the writer is done", async () => {
    const path = await logFile();
    await appendFile(path, "first\n");
    let finished = false;
    const reading = readAll(path, true, () => finished);
    await new Promise((r) => setTimeout(r, 50));
    await appendFile(path, "second\n");
    await new Promise((r) => setTimeout(r, 50));
    await rotateLog(path, 4);
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
          const path = await logFile();
          const old = olds.join("");
          if (old) await appendFile(rotatedPath(path), old);
          if (current) await appendFile(path, current);
          let out = "";
          const ac = new AbortController();
          for await (const chunk of readLog(path, {
            follow: false,
            done: () => true,
            signal: ac.signal,
            tailLines: n,
          })) {
            out += Buffer.from(chunk).toString();
          }
          expect(out).toBe(referenceTail(old + current, n));
        },
      ),
      { numRuns: 150 },
    );
  });

  test("following with a tail starts at the last lines, then carries new output", async () => {
    const path = await logFile();
    await appendFile(path, "one\ntwo\nthree\n");
    let finished = false;
    let out = "";
    const ac = new AbortController();
    const reading = (async () => {
      for await (const chunk of readLog(path, {
        follow: true,
        done: () => finished,
        signal: ac.signal,
        pollMs: 10,
        tailLines: 2,
      })) {
        out += Buffer.from(chunk).toString();
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    await appendFile(path, "four\n");
    await new Promise((r) => setTimeout(r, 50));
    finished = true;
    await reading;
    expect(out).toBe("two\nthree\nfour\n");
  });
});
