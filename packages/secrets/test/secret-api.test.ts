import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { SecretService } from "@chalk/proto/secrets/v1";
import { addService, createClient, createTransport, listen, type Transport } from "@chalk/rpc";
import { test as base, describe, expect } from "vitest";
import { SecretStore, secretServiceImpl } from "../src/host/index.js";
import { Integrations, Secret, Secrets } from "../src/index.js";
import { spawnTs } from "./helpers.js";

interface ServerFixture {
  root: string;
  store: SecretStore;
  transport(environment?: string): Transport;
}

const test = base.extend<{ server: ServerFixture }>({
  // biome-ignore lint/correctness/noEmptyPattern: vitest fixtures take their dependencies by destructuring.
  server: async ({}, use) => {
    const root = await mkdtemp(join(tmpdir(), "chalk-secrets-api-"));
    const store = await SecretStore.open({ path: join(root, "secrets.db") });
    const server = await listen({
      address: "127.0.0.1:0",
      register: (s) => addService(s, SecretService, secretServiceImpl(store)),
    });
    const { address } = server;
    const transports: Transport[] = [];
    try {
      await use({
        root,
        store,
        transport: (environment = "default") => {
          const t = createTransport({ address, environment });
          transports.push(t);
          return t;
        },
      });
    } finally {
      for (const t of transports) t.close();
      server.close();
      store.close();
      await rm(root, { recursive: true, force: true });
    }
  },
});

async function rejection(p: Promise<unknown>): Promise<ChalkError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ChalkError) return err;
    throw err;
  }
  throw new Error("expected a ChalkError");
}

describe("secrets over gRPC", () => {
  test("secrets set through the SDK are listed by name and resolve on the host", async ({ server }) => {
    const transport = server.transport();
    const info = await Secrets.set("OPENAI_API_KEY", "sk-live-123", { transport });
    expect(info.name).toBe("OPENAI_API_KEY");
    await Secrets.set("SECOND", "two", { transport });
    expect((await Secrets.list({ transport })).map((s) => s.name)).toEqual(["OPENAI_API_KEY", "SECOND"]);
    expect(server.store.resolve("default", [Secret.fromEnv("OPENAI_API_KEY")])).toEqual({
      OPENAI_API_KEY: "sk-live-123",
    });
    await Secrets.delete("SECOND", { transport });
    expect((await Secrets.list({ transport })).map((s) => s.name)).toEqual(["OPENAI_API_KEY"]);
    expect((await rejection(Secrets.delete("SECOND", { transport }))).code).toBe(Code.NotFound);
  });

  test("integrations are listed with their key names and resolve key by key", async ({ server }) => {
    const transport = server.transport();
    await Integrations.set("prod_postgres", { PGHOST: "db.internal", PGPASSWORD: "pg-pass" }, { transport });
    const [listed] = await Integrations.list({ transport });
    expect(listed).toMatchObject({ name: "prod_postgres", keys: ["PGHOST", "PGPASSWORD"] });
    expect(server.store.resolve("default", [Secret.fromIntegration("prod_postgres")])).toEqual({
      PGHOST: "db.internal",
      PGPASSWORD: "pg-pass",
    });
    await Integrations.delete("prod_postgres", { transport });
    expect(await Integrations.list({ transport })).toEqual([]);
  });

  test("listing pages through more secrets than one page holds", async ({ server }) => {
    const names = Array.from({ length: 1203 }, (_, i) => `S_${String(i).padStart(5, "0")}`);
    for (const n of names) server.store.setSecret("default", n, "v");
    expect((await Secrets.list({ transport: server.transport() })).map((s) => s.name)).toEqual(names);
  });

  test("no response of any call carries a value", async ({ server }) => {
    const marker = `never-returned-${randomBytes(6).toString("hex")}`;
    const raw = createClient(SecretService, server.transport());
    const responses = [
      await raw.setSecret({ name: "A", value: marker }),
      await raw.setSecret({ name: "A", value: marker }),
      await raw.listSecrets({}),
      await raw.setIntegration({ name: "I", values: { K: marker } }),
      await raw.listIntegrations({}),
    ];
    const text = JSON.stringify(responses, (_k, v) => (typeof v === "bigint" ? String(v) : v));
    expect(text).not.toContain(marker);
  });

  test("environments are separate over the API", async ({ server }) => {
    await Secrets.set("TOKEN", "a", { transport: server.transport("team-a") });
    expect(await Secrets.list({ transport: server.transport("team-b") })).toEqual([]);
    const err = await rejection(Secrets.set("TOKEN", "x", { transport: server.transport("Not Valid") }));
    expect(err.code).toBe(Code.InvalidArgument);
  });

  test("the server refuses invalid input naming the field, even from a client that skips validation", async ({
    server,
  }) => {
    const raw = createClient(SecretService, server.transport());
    const value = `oversized-${"v".repeat(70_000)}`;
    const big = await rejection(raw.setSecret({ name: "BIG", value }));
    expect(big.code).toBe(Code.InvalidArgument);
    expect(big.message).toMatch(/^\[invalid_argument\] value: is 70010 bytes/);
    expect(big.message).not.toContain("oversized-");
    expect((await rejection(raw.setSecret({ name: "no-dashes", value: "v" }))).message).toMatch(
      /^\[invalid_argument\] name: /,
    );
    expect((await rejection(raw.setIntegration({ name: "I", values: { "bad key": "v" } }))).message).toMatch(
      /values\.bad key/,
    );
    // The SDK refuses the same before sending.
    expect((await rejection(Secrets.set("no-dashes", "v", { transport: server.transport() }))).field).toBe(
      "name",
    );
  });
});

test("a server's logs and database hold no secret value in plain text, even with gRPC tracing on", {
  timeout: 120_000,
}, async () => {
  const root = await mkdtemp(join(tmpdir(), "chalk-secrets-logs-"));
  let child: ChildProcess | undefined;
  try {
    const marker = `plaintext-marker-${randomBytes(8).toString("hex")}`;
    child = spawnTs(join(import.meta.dirname, "fixtures/secret-server.ts"), [join(root, "secrets.db")], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, GRPC_TRACE: "all", GRPC_VERBOSITY: "DEBUG" },
    });
    let logs = "";
    child.stdout?.on("data", (d: Buffer) => {
      logs += d.toString("utf8");
    });
    child.stderr?.on("data", (d: Buffer) => {
      logs += d.toString("utf8");
    });
    while (!logs.includes('"address"')) {
      if (child.exitCode !== null) throw new Error(`server exited: ${logs}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const address = (/"address":"([^"]+)"/.exec(logs) ?? [])[1]!;
    const transport = createTransport({ address });
    try {
      await Secrets.set("KNOWN", marker, { transport });
      await Secrets.set("KNOWN", `${marker}-again`, { transport });
      await Integrations.set("pg", { PGPASSWORD: `${marker}-integration` }, { transport });
      const raw = createClient(SecretService, transport);
      // Failing calls that carry the value: their errors are logged too.
      await raw.setSecret({ name: "bad name", value: marker }).catch(() => undefined);
      await raw.setSecret({ name: "BIG", value: `${marker}${"x".repeat(70_000)}` }).catch(() => undefined);
      await raw.setIntegration({ name: "pg2", values: { "bad key": marker } }).catch(() => undefined);
      await Secrets.list({ transport });
    } finally {
      transport.close();
    }
    const dbFiles = (await readdir(root)).filter((f) => f.startsWith("secrets.db"));
    expect(dbFiles).toContain("secrets.db-wal");
    const bytesBefore = await Promise.all(dbFiles.map((f) => readFile(join(root, f))));
    child.kill("SIGTERM");
    await once(child, "exit");
    expect(logs).toContain('"method":"SetSecret"');
    expect(logs.length).toBeGreaterThan(1000); // tracing was on
    expect(logs).not.toContain(marker);
    const bytesAfter = await Promise.all(
      (await readdir(root)).filter((f) => f.startsWith("secrets.db")).map((f) => readFile(join(root, f))),
    );
    for (const bytes of [...bytesBefore, ...bytesAfter]) {
      expect(bytes.includes(Buffer.from(marker, "utf8"))).toBe(false);
      expect(bytes.includes(Buffer.from(marker, "utf16le"))).toBe(false);
    }
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await rm(root, { recursive: true, force: true });
  }
});
