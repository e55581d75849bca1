/**
 * The server is killed with SIGKILL while containers run; after a restart on the same data dir the
 * containers are still Running, accept exec, and a container whose sandbox vanished meanwhile is
 * marked Failed with the reason. On both backends: on Kubernetes the restarted server recovers
 * live containers from the API (its Pod informer) and history from its own store.
 */
import { Code } from "@chalk/core";
import { ensureCluster, kubectl } from "@chalk/test-cluster";
import { describe, expect } from "vitest";
import { Container } from "../src/index.js";
import { BACKENDS, containerTest, useServer } from "./fixtures.js";

describe.each(BACKENDS)("server restarts on the %s backend", (backend) => {
  const ctx = useServer([], { backend });
  const test = containerTest(() => ctx.server);

  test("kill -9 of the server loses nothing: containers keep running and accept exec after a restart", async ({
    run,
  }) => {
    const a = await run({ image: ctx.image, name: "survivor-a" });
    const b = await run({
      image: ctx.image,
      name: "survivor-b",
      entrypoint: ["sh", "-c", "echo before; while :; do sleep 0.2; done"],
    });
    await a.exec("sh", "-c", "echo state > /tmp/state");
    // A container that ended before the restart: its record and log are history, kept by the server.
    const done = await run({ image: ctx.image, name: "finished", entrypoint: ["sh", "-c", "echo history"] });
    const t0 = { transport: ctx.server.transport() };
    for (let i = 0; i < 100 && (await Container.fromId(done.id, t0)).info.status !== "Succeeded"; i++)
      await new Promise((r) => setTimeout(r, 200));
    await ctx.server.kill("SIGKILL");
    await ctx.server.restart();
    const t = { transport: ctx.server.transport() };
    const a2 = await Container.fromName("survivor-a", t);
    const b2 = await Container.fromId(b.id, t);
    expect(a2.info.status).toBe("Running");
    expect(b2.info.status).toBe("Running");
    expect((await a2.exec("cat", "/tmp/state")).stdoutText).toBe("state\n");
    expect(await b2.logs()).toContain("before\n");
    const done2 = await Container.fromId(done.id, t);
    expect(done2.info.status).toBe("Succeeded");
    expect(await done2.logs()).toBe("history\n");
    // The restarted server watches the adopted entrypoint again: stopping it is recorded.
    await b2.stop({ gracePeriodSeconds: 1 });
    expect(b2.info.status).toBe("Stopped");
    await a2.stop();
  });

  test("the files API and port forwarding work on an adopted container after kill -9 of the server (local); Kubernetes refuses files with unimplemented", async ({
    run,
  }) => {
    if (backend !== "local") {
      // Capabilities the Kubernetes backend does not have yet: typed refusals, before and after a restart.
      const c = await run({ image: ctx.image, name: "no-files" });
      await ctx.server.kill("SIGKILL");
      await ctx.server.restart();
      const again = await Container.fromId(c.id, { transport: ctx.server.transport() });
      await expect(again.fs.readFile("/etc/hostname")).rejects.toMatchObject({ code: Code.Unimplemented });
      await again.stop();
      return;
    }
    const { FORWARD_ENTRYPOINT, FORWARD_PORT } = await import("./port-forward-server.js");
    const c = await run({
      image: ctx.image,
      name: "files-survivor",
      port: FORWARD_PORT,
      entrypoint: FORWARD_ENTRYPOINT,
      readiness: { port: FORWARD_PORT },
    });
    await c.fs.writeFile("/tmp/kept", "before the restart");
    await ctx.server.kill("SIGKILL");
    await ctx.server.restart();
    const again = await Container.fromId(c.id, { transport: ctx.server.transport() });
    // A new files agent starts for the adopted container; the old one ended with its stdin.
    expect(await again.fs.readFile("/tmp/kept", { encoding: "utf8" })).toBe("before the restart");
    await again.fs.writeFile("/tmp/after", "after");
    const agents = await again.exec(
      "sh",
      "-c",
      "for p in /proc/[0-9]*; do readlink $p/exe; done 2>/dev/null | grep -c chalk-fs-agent",
    );
    expect(agents.stdoutText.trim()).toBe("1");
    await using fwd = await again.forward(FORWARD_PORT);
    expect(await (await fetch(`http://${fwd.address}/hello`)).text()).toBe("hello from the container\n");
    await again.stop();
  });

  test("a sandbox that vanished while the server was down is marked Failed with the reason", async ({
    run,
  }) => {
    const c = await run({ image: ctx.image, name: "vanishing" });
    await ctx.server.kill("SIGKILL");
    // Behind the server's back, the sandbox (its Pod) goes away.
    if (backend === "local") {
      const { LocalRuntime } = await import("@chalk/sandbox/local");
      const runtime = new LocalRuntime({ stateDir: `${ctx.server.dataDir}/sandboxes` });
      await (await runtime.get(c.info.sandboxId)).stop();
    } else {
      const cluster = await ensureCluster();
      await kubectl(cluster, [
        "delete",
        "pod",
        "-n",
        ctx.namespaceOf("default"),
        `c-${c.id}`,
        "--grace-period=0",
        "--wait=true",
      ]);
    }
    await ctx.server.restart();
    const again = await Container.fromId(c.id, { transport: ctx.server.transport() });
    expect(again.info.status).toBe("Failed");
    expect(again.info.statusMessage).toMatch(/vanished/);
  });
});
