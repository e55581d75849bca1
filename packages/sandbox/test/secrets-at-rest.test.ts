import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Sandbox } from "../src/index.js";
import { LocalRuntime } from "../src/local/index.js";
import { collector, testRootfs } from "./behaviour.js";

const rootfs = testRootfs();
let stateDir: string;
let runtime: LocalRuntime;
let sandbox: Sandbox;

/** Files under `dir` (not following symlinks, not into mounts' contents) whose bytes contain `needle`. */
function filesHolding(dir: string, needle: string, skip: readonly string[] = []): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (skip.some((s) => p === s || p.startsWith(`${s}/`))) continue;
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && readFileSync(p).includes(needle)) found.push(relative(dir, p));
    }
  };
  walk(dir);
  return found.sort();
}

const secret = `sandbox-secret-${randomBytes(8).toString("hex")}`;
const execSecret = `exec-secret-${randomBytes(8).toString("hex")}`;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "chalk-sbx-secrets-"));
  runtime = new LocalRuntime({ stateDir });
  sandbox = await runtime.create({ rootfs, env: { API_KEY: secret }, network: true });
});

afterAll(async () => {
  await sandbox?.stop().catch(() => undefined);
  await rm(stateDir, { recursive: true, force: true });
});

describe("secrets at rest: the environment is on disk only where runsc needs it", () => {
  // The sandbox's own files (its root filesystem) are not the runtime's to scan.
  const skip = () => [join(stateDir, "sandboxes", sandbox.id, "rootfs")];
  const stateFile = () => `runsc/${sandbox.id}_sandbox:${sandbox.id}.state`;

  test("once the sandbox runs, only runsc's own state file holds its environment (root only)", async () => {
    expect(filesHolding(stateDir, secret, skip())).toEqual([stateFile()]);
    const bundle = JSON.parse(
      readFileSync(join(stateDir, "sandboxes", sandbox.id, "bundle", "config.json"), "utf8"),
    );
    expect(bundle.process.env).toEqual([]);
    // runsc makes it 0640 in its --root, which this runtime makes 0700: root only.
    expect(statSync(join(stateDir, stateFile())).mode & 0o007).toBe(0);
    expect(statSync(join(stateDir, "runsc")).mode & 0o077).toBe(0);
  });

  test("execs still get the sandbox's environment, over which their own applies", async () => {
    const r = await sandbox.exec("sh", "-c", 'echo "$API_KEY $EXTRA"', { env: { EXTRA: execSecret } });
    expect(r.stdoutText).toBe(`${secret} ${execSecret}\n`);
  });

  test("an exec's environment is gone from disk once its process runs, and never was in a log", async () => {
    const proc = await sandbox.spawn(["sh", "-c", 'echo "started $EXTRA"; sleep 30'], {
      env: { EXTRA: execSecret },
    });
    await collector(proc.stdout).until("started");
    let holding = filesHolding(stateDir, execSecret, skip());
    for (let i = 0; i < 50 && holding.length > 0; i++) {
      await sleep(20);
      holding = filesHolding(stateDir, execSecret, skip());
    }
    expect(holding).toEqual([]);
    expect(filesHolding(stateDir, secret, skip())).toEqual([stateFile()]);
    await proc.signal("SIGKILL");
    await proc.wait();
  });

  test("after stop, nothing of it is left", async () => {
    await sandbox.stop();
    expect(existsSync(join(stateDir, stateFile()))).toBe(false);
    expect(filesHolding(stateDir, secret)).toEqual([]);
    expect(filesHolding(stateDir, execSecret)).toEqual([]);
  });
});
