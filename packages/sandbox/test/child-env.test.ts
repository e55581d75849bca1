/**
 * The host processes the local runtime starts (the detached wrapper that outlives its parent,
 * `runsc run`, the sandbox and gofer, `runsc exec`, the PTY relay) carry a minimal environment,
 * never the embedding process's: a server's token must not sit in their /proc/PID/environ (issue 8,
 * finding 9).
 */
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { LocalRuntime } from "../src/local/index.js";
import { testRootfs } from "./behaviour.js";

const SECRET = "chalk-token-that-must-not-leak-0123456789";
let stateDir: string;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "chalk-child-env-"));
  process.env.CHALK_TOKEN = SECRET;
});

afterAll(async () => {
  delete process.env.CHALK_TOKEN;
  await rm(stateDir, { recursive: true, force: true });
});

/** Host processes whose command line names `needle`, with their environment. */
function processesNaming(needle: string): { pid: number; cmdline: string; environ: string }[] {
  const out: { pid: number; cmdline: string; environ: string }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ");
      if (!cmdline.includes(needle)) continue;
      out.push({ pid: Number(entry), cmdline, environ: readFileSync(`/proc/${entry}/environ`, "utf8") });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe("children of the runtime", () => {
  test("carry no CHALK_TOKEN: wrapper, runsc, sandbox, gofer, exec and PTY relay", async () => {
    const runtime = new LocalRuntime({ stateDir });
    const sandbox = await runtime.create({ rootfs: testRootfs(), network: true, command: ["sleep", "1000"] });
    try {
      const exec = await sandbox.spawn(["sleep", "30"]);
      const pty = await sandbox.spawn(["sleep", "30"], { pty: { cols: 80, rows: 24 } });
      const children = processesNaming(sandbox.id);
      // At least the detached wrapper, `runsc run` and the `runsc exec`s: otherwise this proves nothing.
      expect(children.length, children.map((c) => c.cmdline).join("\n")).toBeGreaterThanOrEqual(3);
      for (const c of children) {
        expect(c.environ, `pid ${c.pid}: ${c.cmdline}`).not.toContain(SECRET);
        expect(c.environ).not.toContain("CHALK_TOKEN");
      }
      await exec.signal("KILL");
      await pty.signal("KILL");
    } finally {
      await sandbox.stop();
    }
  });
});
