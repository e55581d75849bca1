import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import Database from "better-sqlite3";
import { afterEach, describe, expect, test } from "vitest";
import { SecretStore } from "../src/host/index.js";
import { Secret } from "../src/index.js";

const roots: string[] = [];
const stores: SecretStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) s.close();
  for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
});

async function dir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "chalk-secrets-"));
  roots.push(d);
  return d;
}

async function openStore(path: string, options: { key?: string | Uint8Array; keyFile?: string } = {}) {
  const store = await SecretStore.open({ path, ...options });
  stores.push(store);
  return store;
}

function rejection(fn: () => unknown): Promise<ChalkError> {
  return Promise.resolve()
    .then(fn)
    .then(
      () => {
        throw new Error("expected a ChalkError");
      },
      (err: unknown) => {
        if (err instanceof ChalkError) return err;
        throw err;
      },
    );
}

/** Every file of the database (main file, -wal, -shm) as raw bytes. */
async function databaseBytes(root: string): Promise<{ name: string; bytes: Buffer }[]> {
  const files = (await readdir(root)).filter((f) => f.startsWith("secrets.db") && !f.endsWith(".key"));
  return Promise.all(files.map(async (name) => ({ name, bytes: await readFile(join(root, name)) })));
}

function containsText(bytes: Buffer, text: string): boolean {
  return bytes.includes(Buffer.from(text, "utf8")) || bytes.includes(Buffer.from(text, "utf16le"));
}

describe("SecretStore", () => {
  test("a secret resolves into the variable map while listings show names and times only", async () => {
    const root = await dir();
    const store = await openStore(join(root, "secrets.db"));
    const { secret, created } = store.setSecret("default", "OPENAI_API_KEY", "sk-123");
    expect(created).toBe(true);
    expect(Object.keys(secret).sort()).toEqual(["createdAt", "name", "updatedAt"]);
    expect(store.setSecret("default", "OPENAI_API_KEY", "sk-456").created).toBe(false);
    expect(store.resolve("default", [Secret.fromEnv("OPENAI_API_KEY")])).toEqual({
      OPENAI_API_KEY: "sk-456",
    });
    const page = store.listSecrets("default");
    expect(page.items.map((s) => s.name)).toEqual(["OPENAI_API_KEY"]);
    expect(JSON.stringify(page)).not.toContain("sk-");
    store.deleteSecret("default", "OPENAI_API_KEY");
    expect((await rejection(() => store.deleteSecret("default", "OPENAI_API_KEY"))).code).toBe(Code.NotFound);
  });

  test("an integration resolves to all its keys, or only the chosen ones", async () => {
    const root = await dir();
    const store = await openStore(join(root, "secrets.db"));
    store.setIntegration("default", "prod_postgres", { PGHOST: "db", PGUSER: "app", PGPASSWORD: "pw" });
    expect(store.listIntegrations("default").items[0]?.keys).toEqual(["PGHOST", "PGPASSWORD", "PGUSER"]);
    expect(store.resolve("default", [Secret.fromIntegration("prod_postgres")])).toEqual({
      PGHOST: "db",
      PGUSER: "app",
      PGPASSWORD: "pw",
    });
    expect(store.resolve("default", [Secret.fromIntegration("prod_postgres", { keys: ["PGHOST"] })])).toEqual(
      {
        PGHOST: "db",
      },
    );
  });

  test("resolution names everything missing at once and returns nothing", async () => {
    const root = await dir();
    const store = await openStore(join(root, "secrets.db"));
    store.setSecret("default", "PRESENT", "here");
    store.setIntegration("default", "pg", { PGHOST: "db" });
    const err = await rejection(() =>
      store.resolve(
        "default",
        [
          Secret.fromEnv("PRESENT"),
          Secret.fromEnv("ABSENT"),
          Secret.fromIntegration("nope"),
          Secret.fromIntegration("pg", { keys: ["PGHOST", "PGPASSWORD"] }),
          Secret.fromLocalEnv("LOCAL", { env: { LOCAL: "x" } }),
        ],
        { owner: "c-1" },
      ),
    );
    expect(err.code).toBe(Code.NotFound);
    expect(err.message).toContain('secret "ABSENT"');
    expect(err.message).toContain('integration "nope"');
    expect(err.message).toContain('key "PGPASSWORD" of integration "pg"');
    expect(err.message).toContain('temporary secret "LOCAL" of "c-1"');
    expect(err.message).not.toContain("here");
  });

  test("secrets of one environment do not resolve in another", async () => {
    const root = await dir();
    const store = await openStore(join(root, "secrets.db"));
    store.setSecret("prod", "TOKEN", "prod-token");
    expect((await rejection(() => store.resolve("staging", [Secret.fromEnv("TOKEN")]))).code).toBe(
      Code.NotFound,
    );
    expect(store.listSecrets("staging").items).toEqual([]);
  });

  test("temporary secrets resolve only for their owner, never replace managed ones, and go with the owner", async () => {
    const root = await dir();
    const store = await openStore(join(root, "secrets.db"));
    store.setSecret("default", "TOKEN", "managed");
    const local = Secret.fromLocalEnv("TOKEN", { env: { TOKEN: "from-laptop" } });
    store.setTemporaryFrom("default", "container-a", [local, Secret.fromEnv("OTHER")]);
    expect(store.resolve("default", [local], { owner: "container-a" })).toEqual({ TOKEN: "from-laptop" });
    expect(store.resolve("default", [Secret.fromEnv("TOKEN")])).toEqual({ TOKEN: "managed" });
    expect((await rejection(() => store.resolve("default", [local], { owner: "container-b" }))).code).toBe(
      Code.NotFound,
    );
    expect(store.listTemporary("default", "container-a")).toEqual(["TOKEN"]);
    expect(store.deleteOwner("default", "container-a")).toBe(1);
    expect(store.listTemporary("default", "container-a")).toEqual([]);
    expect((await rejection(() => store.resolve("default", [local], { owner: "container-a" }))).code).toBe(
      Code.NotFound,
    );
    expect(store.resolve("default", [Secret.fromEnv("TOKEN")])).toEqual({ TOKEN: "managed" });
  });

  test("the database file, its WAL and its shared memory never hold a value in plain text", async () => {
    const root = await dir();
    const path = join(root, "secrets.db");
    const store = await openStore(path);
    const marker = `plaintext-marker-${randomBytes(8).toString("hex")}`;
    store.setSecret("default", "KNOWN", marker);
    store.setIntegration("default", "pg", { PGPASSWORD: `${marker}-integration` });
    store.setTemporary("default", "c-1", "LOCAL", `${marker}-temporary`);
    store.setSecret("default", "KNOWN", `${marker}-replaced`);
    const live = await databaseBytes(root);
    expect(live.map((f) => f.name).sort()).toEqual(["secrets.db", "secrets.db-shm", "secrets.db-wal"]);
    for (const f of live) expect(containsText(f.bytes, marker), f.name).toBe(false);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(`${path}-wal`)).mode & 0o777).toBe(0o600);
    store.close();
    for (const f of await databaseBytes(root)) expect(containsText(f.bytes, marker), f.name).toBe(false);
  });

  test("a generated key file has mode 0600 and opens the database again", async () => {
    const root = await dir();
    const path = join(root, "secrets.db");
    const first = await openStore(path);
    first.setSecret("default", "A", "value-a");
    first.close();
    expect((await stat(`${path}.key`)).mode & 0o777).toBe(0o600);
    expect((await readFile(`${path}.key`, "utf8")).trim()).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const again = await openStore(path);
    expect(again.resolve("default", [Secret.fromEnv("A")])).toEqual({ A: "value-a" });
  });

  test("opening with another key fails clearly, saying the key does not match", async () => {
    const root = await dir();
    const path = join(root, "secrets.db");
    const key = randomBytes(32);
    const store = await openStore(path, { key });
    store.setSecret("default", "A", "value-a");
    store.close();
    const err = await rejection(() => SecretStore.open({ path, key: randomBytes(32).toString("base64") }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toMatch(/key does not match the key this database was created with/);
    const otherKeyFile = join(root, "other.key");
    await writeFile(otherKeyFile, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
    expect((await rejection(() => SecretStore.open({ path, keyFile: otherKeyFile }))).message).toMatch(
      /does not match/,
    );
    const ok = await openStore(path, { key: key.toString("hex") });
    expect(ok.resolve("default", [Secret.fromEnv("A")])).toEqual({ A: "value-a" });
  });

  test("a lost key file is reported instead of silently replaced", async () => {
    const root = await dir();
    const path = join(root, "secrets.db");
    (await openStore(path)).setSecret("default", "A", "a");
    stores.pop()?.close();
    await unlink(`${path}.key`);
    const err = await rejection(() => SecretStore.open({ path }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toMatch(/key file .* is missing/);
  });

  test("a key file readable by group or others is refused", async () => {
    const root = await dir();
    const path = join(root, "secrets.db");
    (await openStore(path)).close();
    await chmod(`${path}.key`, 0o644);
    const err = await rejection(() => SecretStore.open({ path }));
    expect(err.message).toMatch(/readable by group or others \(mode 0644\)/);
  });

  test("a ciphertext copied to another secret's row fails with data_loss instead of decrypting", async () => {
    const root = await dir();
    const path = join(root, "secrets.db");
    const store = await openStore(path);
    store.setSecret("default", "ADMIN_TOKEN", "admin-only");
    store.setSecret("default", "PUBLIC_HINT", "harmless");
    const raw = new Database(path);
    raw
      .prepare(
        "UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE name = 'ADMIN_TOKEN') WHERE name = 'PUBLIC_HINT'",
      )
      .run();
    raw.close();
    const err = await rejection(() => store.resolve("default", [Secret.fromEnv("PUBLIC_HINT")]));
    expect(err.code).toBe(Code.DataLoss);
    expect(err.message).not.toContain("admin-only");
  });

  test("invalid names and oversized values are refused without echoing the value", async () => {
    const root = await dir();
    const store = await openStore(join(root, "secrets.db"));
    const value = `secret-${"x".repeat(70_000)}`;
    const big = await rejection(() => store.setSecret("default", "BIG", value));
    expect(big.field).toBe("value");
    expect(big.message).not.toContain("secret-x");
    expect((await rejection(() => store.setSecret("default", "bad-name", "v"))).field).toBe("name");
    expect((await rejection(() => store.setSecret("../etc", "A", "v"))).field).toBe("environment");
    expect((await rejection(() => store.setIntegration("default", "pg", {}))).field).toBe("values");
  });
});
