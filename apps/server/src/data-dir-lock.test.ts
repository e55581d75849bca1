/**
 * The data dir lock (data-dir-lock.ts) in one process: flock(2) locks belong to open file
 * descriptions, so two takes in one process conflict as two processes' do. The two-process cases
 * (a second real server, kill -9) are in test/data-dir-lock.test.ts.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { DataDirInUseError, type DataDirLock, lockDataDir, PID_FILE } from "./data-dir-lock.js";

const dirs: string[] = [];
const held: DataDirLock[] = [];
afterEach(() => {
  for (const l of held.splice(0)) l.release();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), "chalk-lock-"));
  dirs.push(d);
  return d;
}

describe("lockDataDir", () => {
  test("a second take fails naming the data dir and the holder's pid, until the first releases", () => {
    const dir = freshDir();
    const first = lockDataDir(dir);
    held.push(first);
    expect(readdirSync(dir)).toEqual([]);
    expect(() => lockDataDir(dir)).toThrow(DataDirInUseError);
    expect(() => lockDataDir(dir)).toThrow(
      `data dir ${dir} is in use by another chalk-server (pid not yet known`,
    );
    first.recordPid();
    expect(readFileSync(join(dir, PID_FILE), "utf8")).toBe(`${process.pid}\n`);
    expect(() => lockDataDir(dir)).toThrow(`(pid ${process.pid})`);
    first.release();
    expect(readdirSync(dir)).toEqual([]);
    const second = lockDataDir(dir);
    held.push(second);
    expect(() => lockDataDir(dir)).toThrow(DataDirInUseError);
  });

  test("a missing data dir is created, 0700", () => {
    const dir = join(freshDir(), "a", "b");
    held.push(lockDataDir(dir));
    expect(() => lockDataDir(dir)).toThrow(DataDirInUseError);
  });

  test("of many takers of one data dir, exactly one wins, each round", () => {
    for (let round = 0; round < 20; round++) {
      const dir = freshDir();
      const results = Array.from({ length: 8 }, () => {
        try {
          const l = lockDataDir(dir);
          held.push(l);
          return "won";
        } catch (err) {
          expect(err).toBeInstanceOf(DataDirInUseError);
          return "refused";
        }
      });
      expect(results.filter((r) => r === "won")).toHaveLength(1);
      for (const l of held.splice(0)) l.release();
    }
  });

  test("a stale pid file from a crashed holder is not believed: the new holder clears it", async () => {
    const dir = freshDir();
    // A holder that records its pid and then dies by SIGKILL.
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx/esm",
        "-e",
        `import("${join(import.meta.dirname, "data-dir-lock.ts")}").then((m) => { m.lockDataDir(${JSON.stringify(dir)}).recordPid(); process.stdout.write("held\\n"); setInterval(() => {}, 1000); })`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
      expect(() => lockDataDir(dir)).toThrow(`(pid ${child.pid})`);
    } finally {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    }
    expect(readFileSync(join(dir, PID_FILE), "utf8")).toBe(`${child.pid}\n`);
    const lock = lockDataDir(dir);
    held.push(lock);
    expect(readdirSync(dir)).toEqual([]);
  });
});
