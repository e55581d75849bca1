/**
 * The run contract and the lifecycle on real gVisor, through the public SDK: a stop from another
 * handle in any phase of run() wins and leaves nothing behind (also at random points, many times),
 * a shared build survives one of its containers stopping, the run deadline bounds the build,
 * readiness by port and by log line, and statuses that say what happened.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { LocalRuntime } from "@chalk/sandbox/local";
import { SecretStore } from "@chalk/secrets/host";
import { VolumeStore } from "@chalk/volume/host";
import { afterAll, describe, expect } from "vitest";
import { ChalkError, Code, Container, Image, Secret } from "../src/index.js";
import { containerTest, TEST_IMAGE, useServer } from "./fixtures.js";

const ctx = useServer(["--default-memory", "512Mi"]);
const test = containerTest(() => ctx.server);
const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
const dir = mkdtempSync(join(tmpdir(), "chalk-lifecycle-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const t = () => ({ transport: ctx.server.transport() });

async function errorOf(p: Promise<unknown>): Promise<ChalkError> {
  try {
    await p;
  } catch (err) {
    return ChalkError.from(err);
  }
  throw new Error("expected an error");
}

/** Stops the container called `name` from another handle as soon as the server knows it. */
async function stopByName(name: string, afterMs: number): Promise<"stopped" | "never-created"> {
  await sleep(afterMs);
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    const c = await Container.fromName(name, t()).catch(() => undefined);
    if (c) {
      await c.stop();
      return "stopped";
    }
    await sleep(5);
  }
  return "never-created";
}

/** What the server holds for containers: sandboxes, upload volumes, temporary secrets. */
async function leftovers(ids: string[]) {
  const runtime = new LocalRuntime({ stateDir: join(ctx.server.dataDir, "sandboxes") });
  const sandboxes = (await runtime.list({})).filter((i) => i.labels["chalk.container"]);
  const volumes = await VolumeStore.open({ dataDir: join(ctx.server.dataDir, "volumes") });
  const secrets = await SecretStore.open({ path: join(ctx.server.dataDir, "secrets.db") });
  try {
    const uploads = (await volumes.list("default", { pageSize: 1000 })).items.filter((v) =>
      v.name.startsWith("chalk-upload-"),
    );
    const temporary = ids.flatMap((id) => secrets.listTemporary("default", id));
    return { sandboxes: sandboxes.map((s) => s.id), uploads: uploads.map((v) => v.name), temporary };
  } finally {
    secrets.close();
    await volumes.close();
  }
}

function localFile(): string {
  const path = join(dir, `${unique("f")}.txt`);
  writeFileSync(path, "uploaded\n");
  return path;
}

describe("a stop from another handle wins in every phase of run()", () => {
  test("stopped at random points of run(), many times: never left Running, nothing left behind", async () => {
    const ids: string[] = [];
    const outcomes: Record<string, number> = {};
    for (let i = 0; i < 30; i++) {
      const name = unique("stop-race");
      const c = new Container({
        image: Image.debianSlim("3.11").addLocalFile(localFile(), "/app/data.txt"),
        name,
        secrets: [Secret.fromLocalEnv("RUN_SECRET", { env: { RUN_SECRET: "per-run" } })],
        // A readiness phase that lasts a moment, so stops land in it too.
        entrypoint: ["sh", "-c", "sleep 0.4; echo up; exec sleep 1000"],
        readiness: { logLine: "up" },
        ...t(),
      });
      const run = c.run().then(
        () => "resolved" as const,
        (err: unknown) => ChalkError.from(err),
      );
      // Half the stops land in the first moments (acceptance, upload), the rest anywhere.
      const stopper = stopByName(name, Math.floor(Math.random() * (i % 2 === 0 ? 150 : 2000)));
      const [result] = await Promise.all([run, stopper]);
      const after = await Container.fromName(name, t());
      ids.push(after.id);
      expect(after.info.status, `${name}: ${JSON.stringify(after.info)}`).toBe("Stopped");
      if (result === "resolved") {
        outcomes["stopped after Running"] = (outcomes["stopped after Running"] ?? 0) + 1;
      } else {
        expect(result.code, result.message).toBe(Code.Aborted);
        expect(result.message).toMatch(/was stopped/);
        const phase = String(result.details.phase);
        outcomes[phase] = (outcomes[phase] ?? 0) + 1;
      }
    }
    console.log("stop-race outcomes:", JSON.stringify(outcomes));
    expect(await leftovers(ids)).toEqual({ sandboxes: [], uploads: [], temporary: [] });
  });

  test("a stop while the image builds wins; another container sharing that build still runs", async () => {
    const image = Image.debianSlim("3.11").runCommands(`sleep 4; echo ${unique("build")}`);
    const a = new Container({ image, name: unique("shared-a"), ...t() });
    const b = new Container({ image, name: unique("shared-b"), ...t() });
    const runA = errorOf(a.run());
    const runB = b.run();
    while ((await Container.fromName(a.name, t()).catch(() => undefined))?.info.phase !== "build")
      await sleep(20);
    await (await Container.fromName(a.name, t())).stop();
    const err = await runA;
    expect(err.code).toBe(Code.Aborted);
    expect(err.details).toMatchObject({ phase: "build", status: "Stopped" });
    await runB;
    expect(b.info.status).toBe("Running");
    await b.stop();
  });
});

describe("the run contract", () => {
  test("readyTimeoutSecs bounds the build: the run fails in phase build with deadline_exceeded", async () => {
    const name = unique("slow-build");
    const err = await errorOf(
      new Container({
        image: Image.debianSlim("3.11").runCommands(`sleep 8; echo ${name}`),
        name,
        ...t(),
      }).run({
        readyTimeoutSecs: 2,
      }),
    );
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(err.details).toMatchObject({ phase: "build", status: "Failed", reason: "DeadlineExceeded" });
    expect(String(err.details.statusMessage)).toMatch(/not Running within 2s/);
  });

  test("readiness by port: run() resolves once the port accepts a connection", async ({ run }) => {
    const server = `sleep 2; exec perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) or die; while ($c = $s->accept) { print $c "ok\\n"; close $c }'`;
    const c = await run({
      image: TEST_IMAGE,
      name: unique("ready-port"),
      port: 8080,
      entrypoint: ["sh", "-c", server],
      readiness: { port: 8080, timeoutSecs: 30 },
    });
    expect(c.info.status).toBe("Running");
    // No retry: the port accepts as soon as run() resolved.
    const { connect } = await import("node:net");
    const [host, port] = (c.info.address ?? "").split(":");
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: host ?? "", port: Number(port) });
      let got = "";
      s.on("data", (d) => {
        got += d.toString();
      });
      s.on("end", () => resolve(got));
      s.on("error", reject);
    });
    expect(reply).toBe("ok\n");
  });

  test("readiness by log line: run() resolves once the entrypoint printed it", async ({ run }) => {
    const c = await run({
      image: TEST_IMAGE,
      name: unique("ready-log"),
      entrypoint: ["sh", "-c", "echo starting; sleep 2; echo 'server is ready'; sleep 1000"],
      readiness: { logLine: "is ready", timeoutSecs: 30 },
    });
    expect(c.info.status).toBe("Running");
    expect(await c.logs()).toBe("starting\nserver is ready\n");
  });

  test("a readiness check that never passes fails the run in phase readiness and stops the container", async () => {
    const name = unique("never-ready");
    const err = await errorOf(
      new Container({
        image: TEST_IMAGE,
        name,
        port: 8080,
        entrypoint: ["sleep", "1000"],
        readiness: { port: 8080, timeoutSecs: 2 },
        ...t(),
      }).run(),
    );
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(err.details).toMatchObject({ phase: "readiness", status: "Failed", reason: "ReadinessTimeout" });
    const c = await Container.fromName(name, t());
    expect((await leftovers([c.id])).sandboxes).toEqual([]);
  });
});

describe("statuses are true", () => {
  test("an exec that runs out of memory ends an idle container with a message about the exec", async ({
    run,
  }) => {
    const c = await run({ image: TEST_IMAGE, name: unique("exec-oom"), memory: "128Mi" });
    const r = await c.exec("perl", "-e", '$x = "a" x (400 * 1024 * 1024); print length($x)');
    expect(r).toMatchObject({ exitCode: null, signal: "SIGKILL" });
    const end = Date.now() + 10_000;
    while (c.info.status === "Running" && Date.now() < end) {
      await sleep(100);
      await c.refresh();
    }
    // gVisor ends the whole sandbox when its memory cgroup is full (google/gvisor#2533).
    expect(c.info.status).toBe("Failed");
    expect(c.info.statusMessage).toMatch(
      /^out of memory: a command run with exec used more than the container's 128 MiB/,
    );
    expect(c.info.statusMessage).not.toMatch(/entrypoint/);
  });

  test("one byte of stdin to a command that does not read it, many times: the server keeps serving", async ({
    run,
  }) => {
    const c = await run({ image: TEST_IMAGE, name: unique("stdin") });
    for (let i = 0; i < 40; i++) {
      const batch = await Promise.all(Array.from({ length: 5 }, () => c.exec("true", { stdin: "x" })));
      for (const r of batch) expect(r.exitCode).toBe(0);
    }
    const big = new Uint8Array(3 * 1024 * 1024).fill(120);
    expect((await c.exec("head", "-c", "1", { stdin: big })).stdoutText).toBe("x");
    expect((await c.exec("wc", "-c", { stdin: big })).stdoutText.trim()).toBe(String(big.byteLength));
    await c.refresh();
    expect(c.info.status).toBe("Running");
  });
});
