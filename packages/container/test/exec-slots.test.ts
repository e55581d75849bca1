/**
 * Exec slots are shared fairly and bounded (issue 10 "slot fairness across containers", issue 8
 * finding 6): through the public SDK against a real server and real gVisor. One container's held
 * execs never starve another's; SandboxService.Exec (`c.sandbox.spawn`) takes the same slots as
 * ContainerService.ExecContainer; a full queue refuses with resource_exhausted.
 */
import { describe, expect } from "vitest";
import { ChalkError, Code, Container, type Process } from "../src/index.js";
import { containerTest, stopEverything, TEST_IMAGE, TEST_ROOTFS, useServer } from "./fixtures.js";
import { removeDataDir, startServerProcess } from "./server.js";

const ctx = useServer(["--default-memory", "256Mi", "--default-cpu", "250m"]);
const test = containerTest(() => ctx.server);
const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;

async function errorOf(p: Promise<unknown>): Promise<ChalkError> {
  try {
    await p;
  } catch (err) {
    return ChalkError.from(err);
  }
  throw new Error("expected an error");
}

/** Watches promises: which have settled. */
function watch(promises: Promise<unknown>[]): { settled: () => number } {
  let n = 0;
  for (const p of promises) {
    p.then(
      () => n++,
      () => n++,
    );
  }
  return { settled: () => n };
}

describe("exec slots", () => {
  test("32 held execs in container A: `exec echo hi` in container B runs while every one of A's is still held", async ({
    run,
  }) => {
    const a = await run({ image: TEST_IMAGE, name: unique("held") });
    const b = await run({ image: TEST_IMAGE, name: unique("free") });
    // Each holds its exec until the container stops (32 = the server's --max-concurrent-execs).
    const held = Array.from({ length: 32 }, () => a.exec("sleep", "3600"));
    const heldWatch = watch(held);
    // Until A's container-wide bound is reached, the held execs take slots as they come.
    const hi = await b.exec("echo", "hi");
    expect(hi).toMatchObject({ exitCode: 0, stdoutText: "hi\n" });
    // B's exec ran to completion with none of A's ended: it did not wait for A's to give slots back.
    expect(heldWatch.settled()).toBe(0);
    // Also with a timeout (a short exec), and again: the slots A cannot take stay B's.
    for (let i = 0; i < 3; i++) {
      expect((await b.exec("echo", String(i), { timeoutSecs: 60 })).stdoutText).toBe(`${i}\n`);
    }
    expect(heldWatch.settled()).toBe(0);
    await a.stop();
    // Stopping A ends its held execs (with an error: the container went away), queued ones included.
    const ends = await Promise.allSettled(held);
    expect(ends.every((e) => e.status === "rejected" || e.value.exitCode !== 0)).toBe(true);
  });
});

describe("one limit for every exec path", () => {
  test("SandboxService.Exec streams and ExecContainer share the slots and the queue; a full queue is resource_exhausted", async () => {
    const server = await startServerProcess({
      args: [
        "--images-dir",
        "/var/cache/chalk/images",
        "--rootfs-image",
        `${TEST_IMAGE}=${TEST_ROOTFS}`,
        "--max-concurrent-execs",
        "2",
        "--max-execs-per-container",
        "2",
        "--max-long-execs-per-container",
        "2",
        "--max-long-execs-per-environment",
        "2",
        "--max-execs-per-environment",
        "2",
        "--max-queued-execs",
        "2",
        "--max-queued-execs-per-environment",
        "2",
        "--metrics-listen",
        "127.0.0.1:0",
      ],
    });
    /** The server's exec slots as its metrics show them. */
    const slotsNow = async (): Promise<{ running: number; queued: number }> => {
      const body = await server.metricsText();
      const value = (state: string) =>
        Number(new RegExp(`^chalk_exec_slots\\{state="${state}"\\} (\\d+)$`, "m").exec(body)?.[1] ?? NaN);
      return { running: value("running"), queued: value("queued") };
    };
    const until = async (want: { running: number; queued: number }) => {
      for (;;) {
        const now = await slotsNow();
        if (now.running === want.running && now.queued === want.queued) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const procs: Promise<Process>[] = [];
    let c: Container | undefined;
    try {
      c = await new Container({
        image: TEST_IMAGE,
        name: unique("queue"),
        transport: server.transport(),
      }).run();
      // Two streamed processes take the two slots...
      for (let i = 0; i < 2; i++) procs.push(c.sandbox.spawn(["sleep", "3600"]));
      await Promise.all(procs);
      await until({ running: 2, queued: 0 });
      // ...a buffered exec and a third stream wait in the queue (its two places)...
      const queuedExec = c.exec("echo", "queued");
      procs.push(c.sandbox.spawn(["sleep", "3600"]));
      const queuedWatch = watch([queuedExec, procs[2] as Promise<Process>]);
      await until({ running: 2, queued: 2 });
      // ...so both paths are refused at once, naming the flag.
      for (const attempt of [c.exec("echo", "refused"), c.sandbox.spawn(["true"])]) {
        const err = await errorOf(attempt);
        expect(err.code).toBe(Code.ResourceExhausted);
        expect(err.message).toMatch(/--max-queued-execs/);
      }
      expect(queuedWatch.settled()).toBe(0);
      // A stream that ends gives its slot to the queue, in order.
      await (await procs[0])?.signal("SIGKILL");
      expect((await queuedExec).stdoutText).toBe("queued\n");
      await (await procs[1])?.signal("SIGKILL");
      await (await procs[2])?.signal("SIGKILL");
      await until({ running: 0, queued: 0 });
    } finally {
      await c?.stop().catch(() => undefined);
      await Promise.allSettled(procs);
      await stopEverything(server);
      await server.kill();
      await removeDataDir(server.dataDir);
    }
  });
});
