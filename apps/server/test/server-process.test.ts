/**
 * The server as a process: configuration errors, health, reflection, auth, logs without secrets,
 * metrics, and a clean SIGTERM.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ChalkError, Code } from "@chalk/core";
import { ContainerService } from "@chalk/proto/container/v1";
import { SecretService } from "@chalk/proto/secrets/v1";
import { createClient, createTransport } from "@chalk/rpc";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { service as healthService } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { UNCAUGHT_EXCEPTION, UNHANDLED_REJECTION } from "../src/process-guard.js";
import { removeDataDir, type ServerProcess, startServerProcess } from "../src/server-process.js";

/**
 * A module for `node --import` that runs `statement` inside the server process once the server is
 * up (on the process event `chalk-server:started` that main.ts emits): a planted fault.
 */
function plant(statement: string): string {
  // On its own turn of the event loop, as a fault of the running server would be.
  const code = `process.once("chalk-server:started", () => setImmediate(() => { ${statement}; }));`;
  return `data:text/javascript,${encodeURIComponent(code)}`;
}

const require = createRequire(import.meta.url);
const run = promisify(execFile);

let server: ServerProcess;
beforeAll(async () => {
  server = await startServerProcess({ args: ["--metrics-listen", "127.0.0.1:0"] });
});
afterAll(async () => {
  await server?.kill();
  if (server) await removeDataDir(server.dataDir);
});

async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stderr: string }> {
  try {
    await run(
      process.execPath,
      [
        require.resolve("tsx/cli"),
        "--conditions=@chalk/source",
        join(import.meta.dirname, "../src/main.ts"),
        ...args,
      ],
      {
        env: { ...process.env, CHALK_TOKEN: "", ...env },
      },
    );
    return { code: 0, stderr: "" };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

describe("chalk-server", () => {
  test("a bad configuration stops the server with status 2 and a message naming it", async () => {
    expect(await cli(["--listen", "nowhere", "--token", "a-token-of-enough-length@*"])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("--listen"),
    });
    expect(await cli(["--backend", "kubernetes", "--token", "a-token-of-enough-length@*"])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("--kubeconfig: --backend kubernetes needs"),
    });
    expect(await cli(["--data-dir", "/tmp/x"])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("token"),
    });
    expect(await cli(["--insecure-no-auth", "--listen", "0.0.0.0:0"])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("loopback"),
    });
    expect(await cli(["--runsc", "runsc", "--token", "a-token-of-enough-length@*"])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("--runsc"),
    });
  });

  test("a missing runsc, or one of another version, stops the server at start naming the setup command", async () => {
    const dir = mkdtempSync(join(tmpdir(), "chalk-runsc-"));
    try {
      const token = ["--token", "a-token-of-enough-length@*", "--data-dir", join(dir, "data")];
      const missing = await cli(["--runsc", join(dir, "nonexistent"), ...token]);
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toMatch(/not found at .*nonexistent.*tooling\/scripts\/setup\.sh/);
      const foreign = join(dir, "runsc");
      writeFileSync(foreign, "#!/bin/sh\necho 'runsc version 0.0~20221219.0'\n", { mode: 0o755 });
      const wrong = await cli(["--listen", "127.0.0.1:0", ...token], { CHALK_RUNSC: foreign });
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).toContain("0.0~20221219.0");
      expect(wrong.stderr).toContain("tooling/scripts/setup.sh");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("plaintext on an address that is not loopback is refused at start, naming the TLS flags", async () => {
    const { code, stderr } = await cli(["--listen", "0.0.0.0:0", "--token", "a-token-of-enough-length@*"]);
    expect(code).toBe(2);
    expect(stderr).toContain("--listen 0.0.0.0:0: not a loopback address, so the server needs TLS");
    expect(stderr).toContain("--tls-cert FILE and --tls-key FILE (or CHALK_TLS_CERT and CHALK_TLS_KEY)");
  });

  test("a token without its environments is refused at start, saying how to grant them", async () => {
    const { code, stderr } = await cli(["--token", "a-token-of-enough-length"]);
    expect(code).toBe(2);
    expect(stderr).toContain("--token TOKEN@env1,env2, or --token TOKEN@* for every environment");
    expect(stderr).not.toContain("a-token-of-enough-length");
  });

  test("an operator image that is not a root filesystem stops the server with status 2 before anything opens", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "chalk-rootfs-config-"));
    try {
      expect(
        await cli([
          "--token",
          "a-token-of-enough-length@*",
          "--data-dir",
          dataDir,
          "--rootfs-image",
          `empty=${dataDir}`,
        ]),
      ).toMatchObject({ code: 2, stderr: expect.stringContaining("is not a root filesystem") });
      expect(readdirSync(dataDir)).toEqual([]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("the health service answers SERVING without a token", async () => {
    const Health = grpc.makeGenericClientConstructor(healthService as never, "Health");
    const client = new Health(server.address, grpc.credentials.createInsecure());
    const status = await new Promise<unknown>((resolve, reject) =>
      (client as unknown as { Check: (r: object, cb: (e: Error | null, r: unknown) => void) => void }).Check(
        { service: "chalk.container.v1.ContainerService" },
        (err, res) => (err ? reject(err) : resolve(res)),
      ),
    );
    client.close();
    expect(status).toMatchObject({ status: "SERVING" });
  });

  test("reflection lists every service, so grpcurl can list and call them", async () => {
    const dir = join(require.resolve("@grpc/reflection"), "../../proto");
    const def = loadSync("grpc/reflection/v1/reflection.proto", { includeDirs: [dir], keepCase: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
    };
    const client = new pkg.grpc.reflection.v1.ServerReflection(
      server.address,
      grpc.credentials.createInsecure(),
    );
    const call = (
      client as unknown as { ServerReflectionInfo: () => grpc.ClientDuplexStream<object, unknown> }
    ).ServerReflectionInfo();
    const answer = new Promise<{ list_services_response: { service: { name: string }[] } }>((resolve) =>
      call.once("data", resolve as never),
    );
    call.write({ list_services: "*" });
    const names = (await answer).list_services_response.service.map((s) => s.name);
    call.end();
    client.close();
    expect(names).toEqual(
      expect.arrayContaining([
        "chalk.container.v1.ContainerService",
        "chalk.container.v1.ContainerFileService",
        "chalk.sandbox.v1.SandboxService",
        "chalk.volume.v1.VolumeService",
        "chalk.secrets.v1.SecretService",
        "chalk.image.v1.ImageService",
        "grpc.health.v1.Health",
      ]),
    );
  });

  test("calls without the token are unauthenticated; with it they work", async () => {
    const anon = createClient(ContainerService, createTransport({ address: server.address, token: "" }));
    await expect(anon.listContainers({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    const authed = createClient(ContainerService, server.transport());
    expect((await authed.listContainers({})).containers).toEqual([]);
    expect(ChalkError).toBeDefined();
  });

  test("logs carry request id, method, environment, duration and code, and never a secret value", async () => {
    const secrets = createClient(SecretService, server.transport("team-a"));
    const value = `secret-value-${Date.now()}`;
    await secrets.setSecret({ name: "LOGGED_NOWHERE", value });
    await secrets.setIntegration({ name: "db", values: { PASSWORD: `${value}-db` } });
    await createClient(ContainerService, server.transport("team-a"))
      .getContainer({ ref: { case: "name", value: "missing" } })
      .catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    const all = server.logs.join("\n");
    expect(all).not.toContain(value);
    expect(all).not.toContain(server.token);
    const line = server.logs
      .map((l) => (l.startsWith("{") ? (JSON.parse(l) as Record<string, unknown>) : {}))
      .find((l) => l.method === "chalk.container.v1.ContainerService/GetContainer");
    expect(line).toMatchObject({ env: "team-a", code: "not_found", reqId: expect.any(String) });
    expect(line?.durationMs).toEqual(expect.any(Number));
  });

  test("the metrics endpoint serves containers by status, execs, builds and bytes streamed", async () => {
    const body = await server.metricsText();
    for (const name of [
      'chalk_containers{status="Running"}',
      "chalk_container_execs_total",
      "chalk_container_exec_duration_seconds_bucket",
      "chalk_image_build_duration_seconds",
      "chalk_bytes_streamed_total",
      "chalk_grpc_calls_total",
    ]) {
      expect(body).toContain(name);
    }
  });

  test("an unhandled rejection is logged as fatal, the server keeps serving, and the fixture reports it", async () => {
    const planted = await startServerProcess({
      nodeOptions: ["--import", plant("Promise.reject(new Error('planted rejection'))")],
    });
    try {
      await expect.poll(() => planted.fatalLogs().length, { timeout: 15_000 }).toBe(1);
      const line = JSON.parse(planted.fatalLogs()[0] ?? "{}") as { msg: string; err: { message: string } };
      expect(line.msg).toBe(UNHANDLED_REJECTION);
      expect(line.err.message).toBe("planted rejection");
      const client = createClient(ContainerService, planted.transport());
      expect((await client.listContainers({})).containers).toEqual([]);
      await expect(planted.kill()).rejects.toThrow(/logged 1 fatal line\(s\)[\s\S]*planted rejection/);
    } finally {
      await removeDataDir(planted.dataDir);
    }
  });

  test("an uncaught exception is logged as fatal and stops the server with status 70", async () => {
    const planted = await startServerProcess({
      nodeOptions: ["--import", plant("throw new Error('planted exception')")],
    });
    try {
      await expect.poll(() => planted.fatalLogs().length, { timeout: 15_000 }).toBe(1);
      expect(planted.fatalLogs()[0]).toContain(UNCAUGHT_EXCEPTION);
      await expect.poll(() => planted.exitCode, { timeout: 10_000 }).toBe(70);
      await expect(planted.kill()).rejects.toThrow(/planted exception/);
    } finally {
      await removeDataDir(planted.dataDir);
    }
  });

  test("SIGTERM stops the server cleanly", async () => {
    const other = await startServerProcess();
    try {
      await other.kill("SIGTERM");
      expect(other.logs.join("\n")).toContain("chalk-server stopped");
    } finally {
      await removeDataDir(other.dataDir);
    }
  });
});
