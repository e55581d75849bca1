import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import type { Sandbox, SandboxCreateOptions, SandboxRuntime } from "@chalk/sandbox";
import { LocalRuntime } from "@chalk/sandbox/local";
import { describe, expect } from "vitest";
import { Volume } from "../src/index.js";
import { test as serverTest } from "./helpers.js";

const rootfs = execFileSync("bash", [join(import.meta.dirname, "../../../tooling/scripts/rootfs.sh")], {
  encoding: "utf8",
}).trim();

/**
 * Runs a shell script in a sandbox and returns its result. The script then waits for stdin's EOF
 * before exiting: runsc 20221219's `exec` drops a process's output when the process exits while
 * runsc's stdin pipe is still open, which is what happens to short commands under `exec`.
 */
async function sh(sandbox: Sandbox, script: string) {
  return sandbox.exec("sh", "-c", `${script}\ns=$?; cat >/dev/null; exit $s`);
}

/** A real runsc runtime; every sandbox a test makes is stopped afterwards, also on failure. */
const test = serverTest.extend<{
  sandboxes: { create(o: Omit<SandboxCreateOptions, "rootfs">): Promise<Sandbox> };
}>({
  // biome-ignore lint/correctness/noEmptyPattern: vitest fixtures take their dependencies by destructuring.
  sandboxes: async ({}, use) => {
    const stateDir = await mkdtemp(join(tmpdir(), "chalk-volume-sandbox-"));
    const runtime: SandboxRuntime = new LocalRuntime({ stateDir });
    const made: Sandbox[] = [];
    try {
      await use({
        async create(options) {
          const sandbox = await runtime.create({ rootfs, ...options });
          made.push(sandbox);
          return sandbox;
        },
      });
    } finally {
      for (const s of made) {
        await s.stop().catch((err: unknown) => {
          // Already stopped by the test itself: fine. Anything else: show the id for debugging.
          if (!(err instanceof ChalkError && err.code === Code.NotFound))
            console.error(`cannot stop ${s.id}:`, err);
        });
      }
      await rm(stateDir, { recursive: true, force: true });
    }
  },
});

describe("volumes mounted into real gVisor sandboxes", () => {
  test("a file put through the API is read by a sandbox that mounts the volume", async ({
    server,
    sandboxes,
  }) => {
    const vol = new Volume("training-data", { transport: server.defaultTransport });
    await vol.putFile("inputs/example.txt", "hello\n");
    const source = await server.store.hostPath("default", "training-data");
    const sandbox = await sandboxes.create({ mounts: [{ source, target: "/data" }] });
    const result = await sh(sandbox, "cat /data/inputs/example.txt");
    expect(result.exitCode).toBe(0);
    expect(result.stdoutText).toBe("hello\n");
  });

  test("a file a sandbox writes is read back through the API", async ({ server, sandboxes }) => {
    const vol = new Volume("outputs", { transport: server.defaultTransport });
    await vol.create();
    const source = await server.store.hostPath("default", "outputs");
    const sandbox = await sandboxes.create({ mounts: [{ source, target: "/out" }] });
    const r = await sh(sandbox, "mkdir -p /out/run1 && echo written-in-gvisor > /out/run1/result.txt");
    expect(r.exitCode).toBe(0);
    expect(new TextDecoder().decode(await vol.readFile("run1/result.txt"))).toBe("written-in-gvisor\n");
    expect((await vol.listFiles("run1/")).map((f) => [f.path, f.size])).toEqual([["run1/result.txt", 18]]);
  });

  test("two sandboxes that mount one volume see each other's writes", async ({ server, sandboxes }) => {
    const vol = new Volume("shared", { transport: server.defaultTransport });
    await vol.create();
    const source = await server.store.hostPath("default", "shared");
    const a = await sandboxes.create({ mounts: [{ source, target: "/shared" }] });
    const b = await sandboxes.create({ mounts: [{ source, target: "/mnt/vol" }] });
    expect((await sh(a, "echo from-a > /shared/a.txt")).exitCode).toBe(0);
    expect((await sh(b, "cat /mnt/vol/a.txt")).stdoutText).toBe("from-a\n");
    expect((await sh(b, "echo from-b > /mnt/vol/b.txt")).exitCode).toBe(0);
    expect((await sh(a, "cat /shared/b.txt")).stdoutText).toBe("from-b\n");
    // A file replaced through the API is seen by both.
    await vol.putFile("a.txt", "replaced by the api\n");
    expect((await sh(a, "cat /shared/a.txt")).stdoutText).toBe("replaced by the api\n");
    expect((await sh(b, "cat /mnt/vol/a.txt")).stdoutText).toBe("replaced by the api\n");
  });

  test("contents outlive the sandboxes that wrote them", async ({ server, sandboxes }) => {
    const vol = new Volume("durable", { transport: server.defaultTransport });
    await vol.create();
    const source = await server.store.hostPath("default", "durable");
    const first = await sandboxes.create({ mounts: [{ source, target: "/data" }] });
    await sh(first, "echo kept > /data/kept.txt");
    await first.stop();
    const second = await sandboxes.create({ mounts: [{ source, target: "/data" }] });
    expect((await sh(second, "cat /data/kept.txt")).stdoutText).toBe("kept\n");
    expect(new TextDecoder().decode(await vol.readFile("kept.txt"))).toBe("kept\n");
  });

  test("a read-only mount lets a sandbox read but not write", async ({ server, sandboxes }) => {
    const vol = new Volume("reference", { transport: server.defaultTransport });
    await vol.putFile("ref.txt", "read me\n");
    const source = await server.store.hostPath("default", "reference");
    const sandbox = await sandboxes.create({ mounts: [{ source, target: "/ref", readOnly: true }] });
    expect((await sh(sandbox, "cat /ref/ref.txt")).stdoutText).toBe("read me\n");
    const write = await sh(sandbox, "echo nope > /ref/new.txt");
    expect(write.exitCode).not.toBe(0);
    expect((await vol.listFiles()).map((f) => f.path)).toEqual(["ref.txt"]);
  });
});
