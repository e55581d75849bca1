import { ChalkError, Code } from "@chalk/core";
import {
  ACTIVE_STATUSES,
  CONTAINER_STATUSES,
  type ContainerStatus,
  type EndReason,
  type ReadinessSpec,
  RUN_PHASES,
  type RunPhase,
  type SecretRef,
  type VolumeMountSpec,
} from "@chalk/spec";
import Database from "better-sqlite3";
import type {
  ContainerRecord,
  ContainerRecords,
  ContainerRef,
  ContainerUpdate,
} from "./container-records.js";

/** The parts of a record kept as JSON in the `spec` column. */
interface SpecColumn {
  env: Record<string, string>;
  secrets: SecretRef[];
  volumes: VolumeMountSpec[];
  port: number;
  entrypoint: string[];
  uploadVolume: string | undefined;
  cleanedUp: boolean;
  readiness?: ReadinessSpec;
  deadlineAt?: number;
  reason?: EndReason;
}

interface Row {
  id: string;
  environment: string;
  name: string;
  status: ContainerStatus;
  phase: string;
  status_message: string;
  created_at: number;
  stopped_at: number | null;
  image_uri: string;
  image_digest: string;
  cpu_millis: number;
  memory_bytes: number;
  gpu: string;
  spec: string;
  address: string;
  sandbox_id: string;
  exit_code: number | null;
}

const ACTIVE_SQL = `(${ACTIVE_STATUSES.map((s) => `'${s}'`).join(", ")})`;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS containers (
  id TEXT PRIMARY KEY,
  environment TEXT NOT NULL,
  name TEXT NOT NULL,
  status TEXT NOT NULL,
  status_message TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  stopped_at INTEGER,
  image_uri TEXT NOT NULL DEFAULT '',
  image_digest TEXT NOT NULL DEFAULT '',
  cpu_millis INTEGER NOT NULL,
  memory_bytes INTEGER NOT NULL,
  gpu TEXT NOT NULL DEFAULT '',
  spec TEXT NOT NULL,
  address TEXT NOT NULL DEFAULT '',
  sandbox_id TEXT NOT NULL DEFAULT '',
  exit_code INTEGER,
  log_path TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS containers_active_name
  ON containers (environment, name) WHERE status IN ${ACTIVE_SQL};
CREATE INDEX IF NOT EXISTS containers_env_created ON containers (environment, created_at);
`;

/** Spellings of secret sources written by earlier versions. */
const LEGACY_SECRET_KINDS: Record<string, SecretRef["kind"]> = { local_env: "localEnv", env: "secret" };

function fromRow(r: Row): ContainerRecord {
  const spec = JSON.parse(r.spec) as SpecColumn;
  return {
    id: r.id,
    environment: r.environment,
    name: r.name,
    status: r.status,
    phase: RUN_PHASES.includes(r.phase as RunPhase) ? (r.phase as RunPhase) : undefined,
    statusMessage: r.status_message,
    reason: spec.reason ?? "",
    createdAt: r.created_at,
    stoppedAt: r.stopped_at ?? undefined,
    deadlineAt: spec.deadlineAt ?? r.created_at,
    imageUri: r.image_uri,
    imageDigest: r.image_digest,
    cpuMillis: r.cpu_millis,
    memoryBytes: r.memory_bytes,
    gpu: r.gpu,
    env: spec.env,
    secrets: spec.secrets.map((s) => ({ ...s, kind: LEGACY_SECRET_KINDS[s.kind] ?? s.kind })),
    volumes: spec.volumes,
    port: spec.port,
    entrypoint: spec.entrypoint,
    readiness: spec.readiness,
    uploadVolume: spec.uploadVolume,
    cleanedUp: spec.cleanedUp,
    address: r.address,
    sandboxId: r.sandbox_id,
    exitCode: r.exit_code ?? undefined,
  };
}

function toParams(c: ContainerRecord) {
  const spec: SpecColumn = {
    env: c.env,
    secrets: c.secrets,
    volumes: c.volumes,
    port: c.port,
    entrypoint: c.entrypoint,
    uploadVolume: c.uploadVolume,
    cleanedUp: c.cleanedUp,
    ...(c.readiness ? { readiness: c.readiness } : {}),
    deadlineAt: c.deadlineAt,
    ...(c.reason ? { reason: c.reason } : {}),
  };
  return {
    id: c.id,
    environment: c.environment,
    name: c.name,
    status: c.status,
    phase: c.phase ?? "",
    statusMessage: c.statusMessage,
    createdAt: c.createdAt,
    stoppedAt: c.stoppedAt ?? null,
    imageUri: c.imageUri,
    imageDigest: c.imageDigest,
    cpuMillis: c.cpuMillis,
    memoryBytes: c.memoryBytes,
    gpu: c.gpu,
    spec: JSON.stringify(spec),
    address: c.address,
    sandboxId: c.sandboxId,
    exitCode: c.exitCode ?? null,
  };
}

/**
 * Container records in one SQLite file, in WAL mode with synchronous=FULL, so a `kill -9` of the
 * server loses no committed change. A partial unique index on (environment, name) over the active
 * statuses is the atomic name reservation; {@link SqliteContainerRecords.update} runs as one
 * immediate transaction. Every backend keeps its records here, in the server's own store.
 */
export class SqliteContainerRecords implements ContainerRecords {
  private constructor(private readonly db: Database.Database) {}

  /**
   * Opens (creating or migrating) the database file at `path`; its directory must exist. `:memory:`
   * gives a private in-memory database (tests).
   */
  static open(path: string): SqliteContainerRecords {
    const db = new Database(path);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("busy_timeout = 5000");
    db.exec(SCHEMA);
    const columns = db.prepare("PRAGMA table_info(containers)").all() as { name: string }[];
    if (!columns.some((c) => c.name === "phase")) {
      db.exec("ALTER TABLE containers ADD COLUMN phase TEXT NOT NULL DEFAULT ''");
    }
    return new SqliteContainerRecords(db);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  async reserve(c: ContainerRecord): Promise<void> {
    try {
      this.db
        .prepare(
          `INSERT INTO containers (id, environment, name, status, phase, status_message, created_at, stopped_at,
             image_uri, image_digest, cpu_millis, memory_bytes, gpu, spec, address, sandbox_id, exit_code)
           VALUES (@id, @environment, @name, @status, @phase, @statusMessage, @createdAt, @stoppedAt,
             @imageUri, @imageDigest, @cpuMillis, @memoryBytes, @gpu, @spec, @address, @sandboxId, @exitCode)`,
        )
        .run(toParams(c));
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE") {
        const holder = await this.find(c.environment, { name: c.name });
        throw new ChalkError(
          Code.AlreadyExists,
          `container ${JSON.stringify(c.name)} already exists${holder ? ` (id ${holder.id}, ${holder.status})` : ""}; stop it first or pick another name`,
          { field: "name" },
        );
      }
      throw err;
    }
  }

  #get(id: string): ContainerRecord | undefined {
    const r = this.db.prepare("SELECT * FROM containers WHERE id = ?").get(id) as Row | undefined;
    return r && fromRow(r);
  }

  async get(id: string): Promise<ContainerRecord | undefined> {
    return this.#get(id);
  }

  async find(environment: string, ref: ContainerRef): Promise<ContainerRecord | undefined> {
    const r =
      "id" in ref
        ? this.db
            .prepare("SELECT * FROM containers WHERE id = ? AND environment = ?")
            .get(ref.id, environment)
        : this.db
            .prepare(
              `SELECT * FROM containers WHERE environment = ? AND name = ?
               ORDER BY status IN ${ACTIVE_SQL} DESC, created_at DESC, rowid DESC LIMIT 1`,
            )
            .get(environment, ref.name);
    return r ? fromRow(r as Row) : undefined;
  }

  async list(
    environment: string,
    options: { status?: ContainerStatus; limit: number },
  ): Promise<ContainerRecord[]> {
    const rows = (
      options.status
        ? this.db
            .prepare(
              "SELECT * FROM containers WHERE environment = ? AND status = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
            )
            .all(environment, options.status, options.limit)
        : this.db
            .prepare(
              "SELECT * FROM containers WHERE environment = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
            )
            .all(environment, options.limit)
    ) as Row[];
    return rows.map(fromRow);
  }

  async active(): Promise<ContainerRecord[]> {
    const rows = this.db.prepare(`SELECT * FROM containers WHERE status IN ${ACTIVE_SQL}`).all() as Row[];
    return rows.map(fromRow);
  }

  async uncleaned(): Promise<ContainerRecord[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM containers WHERE status NOT IN ${ACTIVE_SQL} AND json_extract(spec, '$.cleanedUp') = 0`,
      )
      .all() as Row[];
    return rows.map(fromRow);
  }

  countByStatus(): Record<ContainerStatus, number> {
    const rows = this.db.prepare("SELECT status, COUNT(*) AS n FROM containers GROUP BY status").all() as {
      status: ContainerStatus;
      n: number;
    }[];
    const out = Object.fromEntries(CONTAINER_STATUSES.map((s) => [s, 0])) as Record<ContainerStatus, number>;
    for (const r of rows) out[r.status] = r.n;
    return out;
  }

  async update(
    id: string,
    change: (current: ContainerRecord) => ContainerUpdate | undefined,
  ): Promise<ContainerRecord | undefined> {
    const apply = this.db.transaction((): ContainerRecord | undefined => {
      const current = this.#get(id);
      if (!current) return undefined;
      const update = change(current);
      if (!update) return undefined;
      const next: ContainerRecord = { ...current };
      for (const [k, v] of Object.entries(update)) {
        if (v !== undefined || k === "phase" || k === "stoppedAt" || k === "exitCode") {
          (next as unknown as Record<string, unknown>)[k] = v;
        }
      }
      this.db
        .prepare(
          `UPDATE containers SET status = @status, phase = @phase, status_message = @statusMessage,
             stopped_at = @stoppedAt, image_uri = @imageUri, image_digest = @imageDigest, address = @address,
             sandbox_id = @sandboxId, exit_code = @exitCode, spec = @spec WHERE id = @id`,
        )
        .run(toParams(next));
      return next;
    });
    return apply.immediate();
  }
}
