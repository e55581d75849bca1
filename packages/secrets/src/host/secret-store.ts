import { chmodSync, closeSync, existsSync, openSync } from "node:fs";
import { ChalkError, Code, invalidArgument, notFound, parseInput } from "@chalk/core";
import Database from "better-sqlite3";
import {
  checkEnvironmentName,
  checkOwner,
  checkSecretName,
  checkSecretValue,
  MAX_INTEGRATION_KEYS,
} from "../names.js";
import { Secret } from "../secret.js";
import type { IntegrationInfo, Page, SecretInfo, SecretSpecLike } from "../types.js";
import { aadFor, keyId, loadOrCreateKeyFile, parseKey, seal, unseal } from "./key.js";
import {
  afterToken,
  type IntegrationRow,
  integrationInfo,
  openOptionsSchema,
  pageSizeOf,
  type SecretRow,
  type SecretStoreListOptions,
  type SecretStoreOpenOptions,
  type SecretStoreResolveOptions,
  secretInfo,
} from "./secret-store-options.js";

export type {
  SecretStoreListOptions,
  SecretStoreOpenOptions,
  SecretStoreResolveOptions,
} from "./secret-store-options.js";

const SCHEMA_VERSION = 1;
const KEY_CHECK_PLAINTEXT = Buffer.from("chalk-secrets key check", "utf8");

/**
 * The host's secret store: one SQLite file (better-sqlite3, WAL) of secrets, integrations and
 * temporary secrets, per environment. Every value is sealed with AES-256-GCM under the store's key
 * with a random 12-byte nonce, and bound to its row (kind, environment, owner, name) as additional
 * authenticated data, so a ciphertext copied to another row does not open. Values go in through
 * `set*` and come out only through {@link SecretStore.resolve}, for injection into sandboxes;
 * nothing here logs, and no error message contains a value.
 *
 * The database keeps a key check value: opening it with another key fails with failed_precondition
 * ("the key does not match") instead of producing garbage; a value that does not authenticate
 * fails with data_loss.
 *
 * @example
 * ```ts
 * import { SecretStore } from "@chalk/secrets/host";
 * const store = await SecretStore.open({ path: "/var/lib/chalk/secrets.db" }); // key in secrets.db.key
 * store.setSecret("default", "OPENAI_API_KEY", "sk-…");
 * const env = store.resolve("default", [Secret.fromEnv("OPENAI_API_KEY")]); // { OPENAI_API_KEY: "sk-…" }
 * ```
 */
export class SecretStore implements Disposable {
  private constructor(
    private readonly db: Database.Database,
    private readonly key: Buffer,
  ) {}

  /**
   * Opens (creating when missing) the database at `options.path`. The key comes from `options.key`,
   * else from the key file (generated for a new database). Fails with failed_precondition when the
   * key does not match the one the database was created with.
   */
  static async open(options: SecretStoreOpenOptions): Promise<SecretStore> {
    const opts = parseInput(openOptionsSchema, options, "options");
    const isNew = !existsSync(opts.path);
    // Create the file with mode 0600 before SQLite does (it would use 0644); its -wal and -shm
    // files take the database file's permissions.
    closeSync(openSync(opts.path, "a", 0o600));
    chmodSync(opts.path, 0o600);
    let db: Database.Database | undefined;
    try {
      db = new Database(opts.path);
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = FULL");
      db.pragma("secure_delete = ON");
      db.pragma("busy_timeout = 5000");
      const hasCheck = SecretStore.migrate(db);
      const key =
        opts.key !== undefined
          ? parseKey(opts.key)
          : loadOrCreateKeyFile(opts.keyFile ?? `${opts.path}.key`, isNew || !hasCheck).key;
      SecretStore.checkKey(db, key);
      return new SecretStore(db, key);
    } catch (err) {
      db?.close();
      throw err instanceof ChalkError
        ? err
        : new ChalkError(Code.FailedPrecondition, `cannot open the secret store ${opts.path}`, {
            cause: err,
          });
    }
  }

  /** Creates the schema; returns whether a key check value exists already. */
  private static migrate(db: Database.Database): boolean {
    db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;
      CREATE TABLE IF NOT EXISTS secrets (
        environment TEXT NOT NULL, name TEXT NOT NULL, sealed BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (environment, name)) STRICT;
      CREATE TABLE IF NOT EXISTS integrations (
        environment TEXT NOT NULL, name TEXT NOT NULL, keys TEXT NOT NULL, sealed BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (environment, name)) STRICT;
      CREATE TABLE IF NOT EXISTS temporary_secrets (
        environment TEXT NOT NULL, owner TEXT NOT NULL, name TEXT NOT NULL, sealed BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (environment, owner, name)) STRICT;
    `);
    const version = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as
      | { value: Buffer | string | number }
      | undefined;
    if (version === undefined) {
      db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?)").run(
        Buffer.from(String(SCHEMA_VERSION)),
      );
    } else if (Number(String(version.value)) > SCHEMA_VERSION) {
      throw new ChalkError(
        Code.FailedPrecondition,
        `the secret store was written by a newer version (schema ${String(version.value)})`,
      );
    }
    return db.prepare("SELECT 1 FROM meta WHERE key = 'key_check'").get() !== undefined;
  }

  /** Verifies the key against the stored check value, storing one for a new database. */
  private static checkKey(db: Database.Database, key: Buffer): void {
    const aad = aadFor("key-check");
    const row = db.prepare("SELECT value FROM meta WHERE key = 'key_check'").get() as
      | { value: Buffer }
      | undefined;
    if (!row) {
      const tx = db.transaction(() => {
        db.prepare("INSERT INTO meta (key, value) VALUES ('key_check', ?)").run(
          seal(key, KEY_CHECK_PLAINTEXT, aad),
        );
        db.prepare("INSERT INTO meta (key, value) VALUES ('key_id', ?)").run(Buffer.from(keyId(key)));
      });
      tx();
      return;
    }
    const plain = unseal(key, row.value, aad);
    if (!plain?.equals(KEY_CHECK_PLAINTEXT)) {
      const stored = db.prepare("SELECT value FROM meta WHERE key = 'key_id'").get() as
        | { value: Buffer }
        | undefined;
      throw new ChalkError(
        Code.FailedPrecondition,
        `the secret store key does not match the key this database was created with ` +
          `(database key id ${stored ? stored.value.toString() : "unknown"}, configured key id ${keyId(key)})`,
      );
    }
  }

  /** Closes the database. */
  close(): void {
    if (this.db.open) this.db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private openValue(sealed: Buffer, what: string, ...aad: string[]): string {
    const plain = unseal(this.key, sealed, aadFor(...aad));
    if (!plain) {
      throw new ChalkError(
        Code.DataLoss,
        `${what} cannot be decrypted: the stored value was altered or sealed under another key`,
      );
    }
    return plain.toString("utf8");
  }

  /** Creates or replaces a secret. Returns its metadata and whether it is new. */
  setSecret(environment: string, name: string, value: string): { secret: SecretInfo; created: boolean } {
    checkEnvironmentName(environment);
    checkSecretName(name);
    checkSecretValue(value);
    const sealed = seal(this.key, Buffer.from(value, "utf8"), aadFor("secret", environment, name));
    const now = Date.now();
    const tx = this.db.transaction(() => {
      const existing = this.db
        .prepare("SELECT created_at_ms FROM secrets WHERE environment = ? AND name = ?")
        .get(environment, name) as { created_at_ms: number } | undefined;
      this.db
        .prepare(
          `INSERT INTO secrets (environment, name, sealed, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (environment, name) DO UPDATE SET sealed = excluded.sealed, updated_at_ms = excluded.updated_at_ms`,
        )
        .run(environment, name, sealed, now, now);
      return existing;
    });
    const existing = tx();
    return {
      secret: { name, createdAt: new Date(existing?.created_at_ms ?? now), updatedAt: new Date(now) },
      created: existing === undefined,
    };
  }

  /** Lists an environment's secrets by name (metadata only), a page at a time. */
  listSecrets(environment: string, options: SecretStoreListOptions = {}): Page<SecretInfo> {
    checkEnvironmentName(environment);
    const size = pageSizeOf(options.pageSize);
    const rows = this.db
      .prepare(
        "SELECT name, created_at_ms, updated_at_ms FROM secrets WHERE environment = ? AND name > ? ORDER BY name LIMIT ?",
      )
      .all(environment, afterToken(options.pageToken), size + 1) as SecretRow[];
    const items = rows.slice(0, size).map(secretInfo);
    return { items, nextPageToken: rows.length > size ? items[items.length - 1]?.name : undefined };
  }

  /** Deletes a secret; not_found when absent. */
  deleteSecret(environment: string, name: string): void {
    checkEnvironmentName(environment);
    checkSecretName(name);
    const res = this.db
      .prepare("DELETE FROM secrets WHERE environment = ? AND name = ?")
      .run(environment, name);
    if (res.changes === 0) throw notFound("secret", name);
  }

  /** Creates or replaces an integration: a named bundle of keys (at most 100) and values. */
  setIntegration(
    environment: string,
    name: string,
    values: Readonly<Record<string, string>>,
  ): { integration: IntegrationInfo; created: boolean } {
    checkEnvironmentName(environment);
    checkSecretName(name);
    if (typeof values !== "object" || values === null)
      throw invalidArgument("values", "must be an object of keys");
    const keys = Object.keys(values).sort();
    if (keys.length === 0) throw invalidArgument("values", "must hold at least one key");
    if (keys.length > MAX_INTEGRATION_KEYS) {
      throw invalidArgument("values", `holds ${keys.length} keys`, `at most ${MAX_INTEGRATION_KEYS}`);
    }
    for (const k of keys) {
      checkSecretName(k, `values.${k.slice(0, 64)}`);
      checkSecretValue(values[k], `values.${k}`);
    }
    const plain = Buffer.from(JSON.stringify(Object.fromEntries(keys.map((k) => [k, values[k]]))), "utf8");
    const sealed = seal(this.key, plain, aadFor("integration", environment, name));
    plain.fill(0);
    const now = Date.now();
    const tx = this.db.transaction(() => {
      const existing = this.db
        .prepare("SELECT created_at_ms FROM integrations WHERE environment = ? AND name = ?")
        .get(environment, name) as { created_at_ms: number } | undefined;
      this.db
        .prepare(
          `INSERT INTO integrations (environment, name, keys, sealed, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (environment, name) DO UPDATE SET keys = excluded.keys, sealed = excluded.sealed,
             updated_at_ms = excluded.updated_at_ms`,
        )
        .run(environment, name, JSON.stringify(keys), sealed, now, now);
      return existing;
    });
    const existing = tx();
    return {
      integration: {
        name,
        keys,
        createdAt: new Date(existing?.created_at_ms ?? now),
        updatedAt: new Date(now),
      },
      created: existing === undefined,
    };
  }

  /** Lists an environment's integrations by name (key names and metadata only), a page at a time. */
  listIntegrations(environment: string, options: SecretStoreListOptions = {}): Page<IntegrationInfo> {
    checkEnvironmentName(environment);
    const size = pageSizeOf(options.pageSize);
    const rows = this.db
      .prepare(
        "SELECT name, keys, created_at_ms, updated_at_ms FROM integrations WHERE environment = ? AND name > ? ORDER BY name LIMIT ?",
      )
      .all(environment, afterToken(options.pageToken), size + 1) as IntegrationRow[];
    const items = rows.slice(0, size).map(integrationInfo);
    return { items, nextPageToken: rows.length > size ? items[items.length - 1]?.name : undefined };
  }

  /** Deletes an integration; not_found when absent. */
  deleteIntegration(environment: string, name: string): void {
    checkEnvironmentName(environment);
    checkSecretName(name);
    const res = this.db
      .prepare("DELETE FROM integrations WHERE environment = ? AND name = ?")
      .run(environment, name);
    if (res.changes === 0) throw notFound("integration", name);
  }

  /**
   * Stores a temporary secret for one owner (a container): what `Secret.fromLocalEnv` resolves to
   * for that owner. Kept apart from managed secrets (it never replaces one), and removed by
   * {@link SecretStore.deleteOwner}.
   */
  setTemporary(environment: string, owner: string, name: string, value: string): void {
    checkEnvironmentName(environment);
    checkOwner(owner);
    checkSecretName(name);
    checkSecretValue(value);
    const sealed = seal(this.key, Buffer.from(value, "utf8"), aadFor("temporary", environment, owner, name));
    this.db
      .prepare(
        `INSERT INTO temporary_secrets (environment, owner, name, sealed, created_at_ms) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (environment, owner, name) DO UPDATE SET sealed = excluded.sealed`,
      )
      .run(environment, owner, name, sealed, Date.now());
  }

  /**
   * Stores the captured value of every `Secret.fromLocalEnv` spec in `secrets` as a temporary secret
   * of `owner`; other specs are ignored. Call before {@link SecretStore.resolve} with that owner.
   */
  setTemporaryFrom(environment: string, owner: string, secrets: readonly Secret[]): void {
    const tx = this.db.transaction(() => {
      for (const s of secrets) {
        if (!(s instanceof Secret) || s.kind !== "localEnv") continue;
        const value = s.revealLocalValue();
        if (value === undefined) {
          throw invalidArgument("secrets", `${s.toString()} carries no value`);
        }
        this.setTemporary(environment, owner, s.name, value);
      }
    });
    tx();
  }

  /** Deletes every temporary secret of an owner; returns how many there were. */
  deleteOwner(environment: string, owner: string): number {
    checkEnvironmentName(environment);
    checkOwner(owner);
    return this.db
      .prepare("DELETE FROM temporary_secrets WHERE environment = ? AND owner = ?")
      .run(environment, owner).changes;
  }

  /** Names of an owner's temporary secrets (for inspection and tests; never values). */
  listTemporary(environment: string, owner: string): string[] {
    checkEnvironmentName(environment);
    checkOwner(owner);
    const rows = this.db
      .prepare("SELECT name FROM temporary_secrets WHERE environment = ? AND owner = ? ORDER BY name")
      .all(environment, owner) as { name: string }[];
    return rows.map((r) => r.name);
  }

  /**
   * Resolves specs into the environment variables to inject, for the host only. Later specs win
   * when two produce the same variable. Everything that cannot be resolved is reported at once:
   * not_found naming each missing secret, integration, integration key or temporary secret; nothing
   * is returned then.
   */
  resolve(
    environment: string,
    specs: readonly SecretSpecLike[],
    options: SecretStoreResolveOptions = {},
  ): Record<string, string> {
    checkEnvironmentName(environment);
    if (options.owner !== undefined) checkOwner(options.owner);
    const out: Record<string, string> = {};
    const missing: string[] = [];
    const getSecret = this.db.prepare("SELECT sealed FROM secrets WHERE environment = ? AND name = ?");
    const getIntegration = this.db.prepare(
      "SELECT sealed FROM integrations WHERE environment = ? AND name = ?",
    );
    const getTemporary = this.db.prepare(
      "SELECT sealed FROM temporary_secrets WHERE environment = ? AND owner = ? AND name = ?",
    );
    specs.forEach((spec, i) => {
      const field = `secrets.${i}`;
      const name = checkSecretName(spec?.name, `${field}.name`);
      switch (spec.kind) {
        case "secret": {
          const row = getSecret.get(environment, name) as { sealed: Buffer } | undefined;
          if (!row) missing.push(`secret ${JSON.stringify(name)}`);
          else
            out[name] = this.openValue(
              row.sealed,
              `secret ${JSON.stringify(name)}`,
              "secret",
              environment,
              name,
            );
          break;
        }
        case "integration": {
          const row = getIntegration.get(environment, name) as { sealed: Buffer } | undefined;
          if (!row) {
            missing.push(`integration ${JSON.stringify(name)}`);
            break;
          }
          const values = JSON.parse(
            this.openValue(
              row.sealed,
              `integration ${JSON.stringify(name)}`,
              "integration",
              environment,
              name,
            ),
          ) as Record<string, string>;
          const keys = spec.keys ?? Object.keys(values);
          for (const k of keys) {
            const v = values[k];
            if (v === undefined)
              missing.push(`key ${JSON.stringify(k)} of integration ${JSON.stringify(name)}`);
            else out[k] = v;
          }
          break;
        }
        case "localEnv": {
          if (options.owner === undefined) {
            throw invalidArgument(
              "owner",
              `is required to resolve Secret.fromLocalEnv(${JSON.stringify(name)})`,
            );
          }
          const row = getTemporary.get(environment, options.owner, name) as { sealed: Buffer } | undefined;
          if (!row)
            missing.push(`temporary secret ${JSON.stringify(name)} of ${JSON.stringify(options.owner)}`);
          else {
            out[name] = this.openValue(
              row.sealed,
              `temporary secret ${JSON.stringify(name)}`,
              "temporary",
              environment,
              options.owner,
              name,
            );
          }
          break;
        }
        default:
          throw invalidArgument(`${field}.kind`, "is not a secret kind", "secret, integration or localEnv");
      }
    });
    if (missing.length > 0) {
      throw new ChalkError(
        Code.NotFound,
        `cannot resolve secrets in environment ${JSON.stringify(environment)}: ${missing.join(", ")} not found`,
        { details: { missing } },
      );
    }
    return out;
  }
}
