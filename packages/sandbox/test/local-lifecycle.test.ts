import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import type { Sandbox } from "../src/index.js";
import { LocalRuntime, type LocalSandboxCreateOptions } from "../src/local/index.js";
import { collector, testRootfs } from "./behaviour.js";

const rootfs = testRootfs();

/** The ChalkError a call fails with. */
async function errorOf(p: Promise<unknown>): Promise<ChalkError> {
  const outcome = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(outcome).toBeInstanceOf(ChalkError);
  return outcome as ChalkError;
}

/** Everything a stopped sandbox may have left on the host, by id: mounts, cgroups, state. */
function leftovers(stateDir: string, id: string): string[] {
  const found: string[] = [];
  if (readFileSync("/proc/mounts", "utf8").includes(id)) found.push("mount");
  for (const c of readdirSync("/sys/fs/cgroup")) {
    if (existsSync(join("/sys/fs/cgroup", c, "chalk", id))) found.push(`cgroup ${c}`);
  }
  if (existsSync(join(stateDir, "sandboxes", id))) found.push("state dir");
  return found;
}

describe("in-process runtime: lifecycle and layers", () => {
  let stateDir: string;
  let runtime: LocalRuntime;
  let made: Sandbox[];

  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), "chalk-sbx-life-"));
    runtime = new LocalRuntime({ stateDir });
    made = [];
  });

  afterEach(async (ctx) => {
    for (const s of made) {
      await s.stop().catch((err) => console.error(`could not stop sandbox ${s.id}:`, err));
      if (ctx.task.result?.state === "fail") console.error(`test made sandbox ${s.id} in ${stateDir}`);
    }
    await rm(stateDir, { recursive: true, force: true });
  });

  async function create(options: Partial<LocalSandboxCreateOptions> = {}): Promise<Sandbox> {
    const sandbox = await runtime.create({ rootfs, ...options });
    made.push(sandbox);
    return sandbox;
  }

  test("stop is idempotent and cleans up a sandbox whose init has already ended", async () => {
    const sandbox = await create({ command: ["sh", "-c", "exit 0"], memory: "128Mi" });
    expect(await sandbox.wait()).toMatchObject({ exitCode: 0, signal: null });
    await sandbox.stop();
    await sandbox.stop();
    expect(leftovers(stateDir, sandbox.id)).toEqual([]);
    expect((await errorOf(runtime.get(sandbox.id))).code).toBe(Code.NotFound);
  });

  test("the init's exit is exact: exit 137 is a code, a SIGKILL from outside is the signal", async () => {
    const exits137 = await create({ command: ["sh", "-c", "exit 137"] });
    expect(await exits137.wait()).toEqual({ exitCode: 137, signal: null, timedOut: false, oomKilled: false });
    const killed = await create({ command: ["sleep", "600"] });
    const waiting = killed.wait();
    await killed.signal("SIGKILL");
    expect(await waiting).toEqual({ exitCode: null, signal: "SIGKILL", timedOut: false, oomKilled: false });
  });

  test("a waiter in this process learns the init's exit when the sandbox is stopped under it", async () => {
    const sandbox = await create({
      command: ["sh", "-c", "trap 'exit 5' TERM; while :; do sleep 0.1; done"],
    });
    const waiting = sandbox.wait();
    await new Promise((r) => setTimeout(r, 300));
    await sandbox.stop({ gracePeriodSeconds: 5 });
    expect(await waiting).toMatchObject({ exitCode: 5, signal: null });
  });

  test("layers stack bottom first, stay untouched, and writableLayerDir keeps writes and whiteouts", async () => {
    const work = await mkdtemp(join(tmpdir(), "chalk-sbx-layers-"));
    try {
      const top = join(work, "top");
      await mkdir(join(top, "etc"), { recursive: true });
      await writeFile(join(top, "etc", "chalk-layer"), "from the top layer\n");
      await writeFile(join(top, "etc", "debian_version"), "shadowed\n");
      const upper = join(work, "upper");
      await mkdir(upper);
      const sandbox = await create({ rootfs: [rootfs, top], writableLayerDir: upper });
      const r = await sandbox.exec("sh", "-c", "cat /etc/chalk-layer /etc/debian_version");
      expect(r.stdoutText).toBe("from the top layer\nshadowed\n");
      await sandbox.exec("sh", "-c", "echo written > /root/new-file && rm /etc/chalk-layer /etc/hostname");
      await sandbox.stop();

      expect(readFileSync(join(upper, "root", "new-file"), "utf8")).toBe("written\n");
      // Only what the sandbox wrote: no trace of mount points (the init's /dev/init).
      expect(readdirSync(upper).sort()).toEqual(["etc", "root"]);
      for (const deleted of ["etc/chalk-layer", "etc/hostname"]) {
        const st = statSync(join(upper, deleted));
        expect(st.isCharacterDevice() && st.rdev === 0).toBe(true);
      }
      // The layers themselves are as they were, and overlayfs's work dir is gone.
      expect(readFileSync(join(top, "etc", "chalk-layer"), "utf8")).toBe("from the top layer\n");
      expect(existsSync(join(rootfs, "etc", "hostname"))).toBe(true);
      expect(existsSync(join(rootfs, "root", "new-file"))).toBe(false);
      expect((await readdir(work)).sort()).toEqual(["top", "upper"]);
      expect(leftovers(stateDir, sandbox.id)).toEqual([]);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  test("a running sandbox's writes land in its upper dir on the host, as they happen", async () => {
    const sandbox = await create();
    const upper = join(stateDir, "sandboxes", sandbox.id, "upper");
    await sandbox.exec("sh", "-c", "mkdir -p /srv/data && echo first > /srv/data/f && rm /etc/hostname");
    // Visible on the host while the sandbox runs (runsc --overlay2=none writes through the host
    // overlayfs; the default root:self would keep them in a file store inside the sandbox).
    expect(readFileSync(join(upper, "srv", "data", "f"), "utf8")).toBe("first\n");
    const whiteout = statSync(join(upper, "etc", "hostname"));
    expect(whiteout.isCharacterDevice() && whiteout.rdev === 0).toBe(true);
    expect(readdirSync(upper).filter((e) => e.startsWith(".gvisor"))).toEqual([]);
    await sandbox.exec("sh", "-c", "echo second >> /srv/data/f");
    expect(readFileSync(join(upper, "srv", "data", "f"), "utf8")).toBe("first\nsecond\n");
    await sandbox.stop();
    expect(existsSync(upper)).toBe(false);
  });

  test("a root filesystem that does not exist fails before anything is made", async () => {
    const err = await errorOf(runtime.create({ rootfs: [rootfs, "/nonexistent/layer"] }));
    expect(err.code).toBe(Code.NotFound);
    expect(err.message).toContain("rootfs[1]");
    expect(await readdir(stateDir)).toEqual([]);
  });

  test("a layer path overlayfs cannot take is rejected naming the field", async () => {
    const err = await errorOf(runtime.create({ rootfs: "/tmp/a,b" }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/rootfs/);
  });

  test("exec arguments and environment stay out of the host's process list", async () => {
    const sandbox = await create();
    const token = `chalk-token-${process.pid}-${Date.now()}`;
    const proc = await sandbox.spawn(["sh", "-c", `echo started; sleep 30 # ${token}`], {
      env: { SECRET_VALUE: token },
    });
    await collector(proc.stdout).until("started");
    const hostCmdlines = execFileSync("sh", ["-c", "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '"], {
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(hostCmdlines).not.toContain(token);
    await proc.signal("KILL");
    expect(await proc.wait()).toMatchObject({ exitCode: null, signal: "SIGKILL" });
  });

  test("disposing the runtime leaves its sandboxes running for the next process", async () => {
    const sandbox = await create();
    await runtime[Symbol.asyncDispose]();
    const again = new LocalRuntime({ stateDir });
    expect((await (await again.get(sandbox.id)).exec("echo", "still here")).stdoutText).toBe("still here\n");
  });
});
