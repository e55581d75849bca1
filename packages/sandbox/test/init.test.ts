import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code } from "@chalk/core";
import { describe, expect, test } from "vitest";
import type { Sandbox } from "../src/index.js";
import { LocalRuntime } from "../src/local/index.js";
import { useLocalRuntime } from "./local-fixture.js";

const fx = useLocalRuntime("chalk-sbx-init-");
const { rootfs } = fx;
const create = (options: Parameters<typeof fx.create>[0] = {}) => fx.create(options);

/** The states (R, S, Z…) of the processes in a sandbox, from procfs. */
async function states(sandbox: Sandbox): Promise<string[]> {
  const r = await sandbox.exec(
    "sh",
    "-c",
    // The state is the field after the command name's closing parenthesis.
    "for p in /proc/[0-9]*; do sed -n 's/.*) \\(.\\).*/\\1/p' \"$p/stat\" 2>/dev/null; done",
  );
  return r.stdoutText.split("\n").filter((l) => l !== "");
}

/** 20 execs, each leaving an orphan that ends at once (reparented to PID 1, which must reap it). */
async function leaveOrphans(sandbox: Sandbox): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const r = await sandbox.exec("sh", "-c", "sh -c 'sleep 0.2' & exit 0");
    expect(r.exitCode).toBe(0);
  }
  await sleep(1500);
}

async function readLog(path: string, until: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const text = await readFile(path, "utf8").catch(() => "");
    if (text.includes(until)) return text;
    await sleep(100);
  }
  return readFile(path, "utf8").catch(() => "");
}

describe("entrypoints run under a reaping init (tini), as docker run --init", () => {
  test("`sleep` as the entrypoint: after 20 execs that leave orphans, no zombies", async () => {
    const sandbox = await create({ command: ["sleep", "infinity"] });
    await leaveOrphans(sandbox);
    const s = await states(sandbox);
    expect(s.length).toBeGreaterThan(0);
    expect(s.filter((x) => x === "Z")).toEqual([]);
  });

  test("with the init opted out, the same leaves zombies (what the init is for)", async () => {
    const sandbox = await create({ command: ["sleep", "infinity"], init: false });
    await leaveOrphans(sandbox);
    expect((await states(sandbox)).filter((x) => x === "Z").length).toBeGreaterThanOrEqual(10);
  });

  test("PID 1 is the init with the command as its child; opted out, PID 1 is the command", async () => {
    const cmdline = async (s: Sandbox, pid: number) =>
      (await s.exec("sh", "-c", `tr '\\0' ' ' < /proc/${pid}/cmdline`)).stdoutText.trim();
    /** Command lines of PID 1's children (the init forks the command a moment after the start). */
    const childrenOf1 = async (s: Sandbox) => {
      for (let i = 0; i < 50; i++) {
        const r = await s.exec(
          "sh",
          "-c",
          'for p in /proc/[0-9]*; do grep -q "^PPid:[[:space:]]*1$" "$p/status" 2>/dev/null && tr "\\0" " " < "$p/cmdline" && echo; done',
        );
        const children = r.stdoutText
          .split("\n")
          .map((l) => l.trim())
          .filter((l) => l !== "");
        if (children.includes("sleep infinity")) return children;
        await sleep(100);
      }
      return [];
    };
    const withInit = await create({ command: ["sleep", "infinity"] });
    expect(await cmdline(withInit, 1)).toBe("/dev/init -- sleep infinity");
    expect(await childrenOf1(withInit)).toContain("sleep infinity");
    const without = await create({ command: ["sleep", "infinity"], init: false });
    expect(await cmdline(without, 1)).toBe("sleep infinity");
  });

  test("the idle init (no command) runs under it too and stops on SIGTERM", async () => {
    const sandbox = await create();
    await leaveOrphans(sandbox);
    expect((await states(sandbox)).filter((x) => x === "Z")).toEqual([]);
    await sandbox.stop({ gracePeriodSeconds: 10 });
  });

  test("a signal to PID 1 reaches the entrypoint, and its exit code passes through", async () => {
    const dir = await mkdtemp(join(tmpdir(), "chalk-init-log-"));
    try {
      const logPath = join(dir, "init.log");
      const sandbox = await create({
        command: ["sh", "-c", "trap 'echo got TERM; exit 7' TERM; echo up; while :; do sleep 0.1; done"],
        logPath,
      });
      expect(await readLog(logPath, "up")).toContain("up");
      const waiting = sandbox.wait();
      // Only PID 1 (the init) gets it; it forwards it to the entrypoint.
      await sandbox.exec("sh", "-c", "kill -TERM 1");
      expect(await waiting).toMatchObject({ exitCode: 7, signal: null });
      expect(await readLog(logPath, "got TERM")).toContain("got TERM");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("exit codes pass through; a signal that ends the entrypoint reads as 128 + N under the init", async () => {
    const three = await create({ command: ["sh", "-c", "exit 3"] });
    expect(await three.wait()).toMatchObject({ exitCode: 3, signal: null });
    const killed = await create({ command: ["sh", "-c", "kill -KILL $$"] });
    expect(await killed.wait()).toMatchObject({ exitCode: 137, signal: null });
    // A SIGKILL from outside reaches every process, the init too: that is the signal, exactly.
    const outside = await create({ command: ["sleep", "600"] });
    const waiting = outside.wait();
    await outside.signal("SIGKILL");
    expect(await waiting).toMatchObject({ exitCode: null, signal: "SIGKILL" });
  });

  test("an init that is not installed is unavailable naming the setup command, before any work", async () => {
    const missing = new LocalRuntime({ stateDir: fx.stateDir, initPath: "/nonexistent/tini-static" });
    const before = (await fx.runtime.list()).map((i) => i.id);
    const err = (await missing.create({ rootfs }).catch((e) => e)) as ChalkError;
    expect(err).toBeInstanceOf(ChalkError);
    expect(err.code).toBe(Code.Unavailable);
    expect(err.message).toMatch(/tini.*tooling\/scripts\/setup\.sh/);
    expect((await fx.runtime.list()).map((i) => i.id)).toEqual(before);
    // Opted out, the same runtime needs no init.
    const s = await missing.create({ rootfs, init: false });
    await using _stopped = { [Symbol.asyncDispose]: () => s.stop() };
    expect((await s.exec("echo", "fine")).stdoutText).toBe("fine\n");
  });
});
