/**
 * A SandboxService.Exec cancelled while it waits for an exec slot starts nothing: with every slot
 * held, execs queue; the client cancels some of them; once the slots are free only the execs that
 * were not cancelled run (each leaves a mark in the sandbox), and the cancelled ones left the queue
 * at once (the server's `chalk_exec_slots{state="queued"}` drops when they are cancelled, not when
 * a slot frees).
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { type ExecRequest, type ExecResponse, SandboxService } from "@chalk/proto/sandbox/v1";
import { createClient } from "@chalk/rpc";
import { connectSandboxes, type Sandbox } from "@chalk/sandbox";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { removeDataDir, type ServerProcess, startServerProcess } from "../src/server-process.js";

const rootfs = execFileSync("bash", [join(import.meta.dirname, "../../../tooling/scripts/rootfs.sh")], {
  encoding: "utf8",
}).trim();

let server: ServerProcess;
const made: Sandbox[] = [];
beforeAll(async () => {
  server = await startServerProcess({
    args: [
      "--images-dir",
      "/var/cache/chalk/images",
      "--rootfs-image",
      `minbase=${rootfs}`,
      "--max-concurrent-execs",
      "1",
      "--metrics-listen",
      "127.0.0.1:0",
    ],
  });
});
afterAll(async () => {
  for (const s of made) await s.stop().catch(() => undefined);
  await server?.kill();
  if (server) await removeDataDir(server.dataDir);
});

async function queued(): Promise<number> {
  const body = await server.metricsText();
  return Number(/^chalk_exec_slots\{state="queued"\} (\d+)$/m.exec(body)?.[1] ?? Number.NaN);
}

/**
 * A raw SandboxService.Exec call (not the SDK, so only the server decides what starts) of `argv`,
 * cancelled by `signal`: resolves with the events it received, or the error that ended it.
 */
function rawExec(
  sandboxId: string,
  argv: string[],
  signal: AbortSignal,
): Promise<{ events: string[]; error?: ChalkError }> {
  const client = createClient(SandboxService, server.transport());
  async function* requests(): AsyncGenerator<Partial<ExecRequest>> {
    yield {
      message: { case: "start", value: { sandboxId, argv, env: {}, workdir: "", timeoutSecs: 30 } },
    } as never;
    // Keep the request side open until the call ends.
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  }
  return (async () => {
    const events: string[] = [];
    try {
      for await (const r of client.exec(requests() as never, { signal }) as AsyncIterable<ExecResponse>)
        events.push(r.event.case ?? "");
      return { events };
    } catch (err) {
      return { events, error: ChalkError.from(err) };
    }
  })();
}

describe("SandboxService.Exec waiting for a slot", () => {
  test("a cancelled waiter never runs; the others run once the slot frees", async () => {
    const sandbox = await connectSandboxes({ transport: server.transport() }).create({ image: "minbase" });
    made.push(sandbox);
    // The one slot is taken.
    const holder = await sandbox.spawn(["sleep", "600"], { timeoutSecs: 600 });
    const calls = [0, 1, 2, 3].map((i) => {
      const ac = new AbortController();
      return { i, ac, done: rawExec(sandbox.id, ["touch", `/tmp/ran-${i}`], ac.signal) };
    });
    await expect.poll(queued, { timeout: 30_000 }).toBe(4);

    const cancelled = calls.filter((c) => c.i % 2 === 0);
    for (const c of cancelled) c.ac.abort();
    for (const c of cancelled) {
      const r = await c.done;
      expect(r.events).toEqual([]);
      expect(r.error?.code).toBe(Code.Canceled);
    }
    // They left the queue as they were cancelled, while the slot is still held.
    await expect.poll(queued, { timeout: 30_000 }).toBe(2);

    await holder.signal("SIGKILL");
    await holder.wait();
    for (const c of calls.filter((x) => x.i % 2 === 1)) {
      expect((await c.done).events).toEqual(["started", "exited"]);
      c.ac.abort();
    }
    // An exec after them gets the slot after every waiter that was ahead of it.
    const marks = await sandbox.exec("sh", "-c", "ls /tmp | grep ^ran- || true", { timeoutSecs: 30 });
    expect(marks.stdoutText.split("\n").filter(Boolean)).toEqual(["ran-1", "ran-3"]);
    expect(await queued()).toBe(0);
  });

  test("the SDK's spawn and exec take a signal that cancels them while they wait, and nothing runs", async () => {
    const sandbox = await connectSandboxes({ transport: server.transport() }).create({ image: "minbase" });
    made.push(sandbox);
    const holder = await sandbox.spawn(["sleep", "600"], { timeoutSecs: 600 });
    const ac = new AbortController();
    const spawned = sandbox.spawn(["touch", "/tmp/sdk-spawn"], { signal: ac.signal });
    const executed = sandbox.exec("touch", "/tmp/sdk-exec", { signal: ac.signal, timeoutSecs: 30 });
    spawned.catch(() => undefined);
    executed.catch(() => undefined);
    await expect.poll(queued, { timeout: 30_000 }).toBe(2);
    ac.abort();
    await expect(spawned).rejects.toMatchObject({ code: Code.Canceled });
    await expect(executed).rejects.toMatchObject({ code: Code.Canceled });
    await expect.poll(queued, { timeout: 30_000 }).toBe(0);
    await holder.signal("SIGKILL");
    await holder.wait();
    const marks = await sandbox.exec("sh", "-c", "ls /tmp | grep ^sdk- || true", { timeoutSecs: 30 });
    expect(marks.stdoutText).toBe("");
    // An aborted signal refuses at once.
    await expect(sandbox.spawn(["true"], { signal: ac.signal })).rejects.toBeDefined();
  });
});
