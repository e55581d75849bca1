import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import Database from "better-sqlite3";

/** A container's lifecycle status, as users see it. */
export type ContainerStatus = "Pending" | "Running" | "Succeeded" | "Failed" | "Stopped" | "Unknown";

/** Statuses that hold the container's name: another run with that name fails with already_exists. */
export const ACTIVE_STATUSES: readonly ContainerStatus[] = ["Pending", "Running", "Unknown"];

/** Where a secret of a container comes from; the value is never stored here. */
export interface SecretRefRecord {
  kind: "secret" | "integration" | "local_env";
  name: string;
  /** Only these keys of an integration; empty: all. */
  keys?: string[];
}

/** A named volume mounted into a container. */
export interface VolumeMountRecord {
  name: string;
  mountPath: string;
  readOnly: boolean;
}

/** The parts of a container's request kept as JSON. */
export interface ContainerSpecRecord {
  env: Record<string, string>;
  secrets: SecretRefRecord[];
  volumes: VolumeMountRecord[];
  port: number;
  entrypoint: string[];
  /** The temporary upload volume this container owns, if any. */
  uploadVolume: string | undefined;
  /** True once the upload volume and the run's local-env secrets were removed. */
  cleanedUp: boolean;
}

/** One container as stored. */
export interface ContainerRecord extends ContainerSpecRecord {
  id: string;
  environment: string;
  name: string;
  status: ContainerStatus;
  statusMessage: string;
  createdAt: number;
  stoppedAt: number | undefined;
  imageUri: string;
  imageDigest: string;
  cpuMillis: number;
  memoryBytes: number;
  gpu: string;
  address: string;
  sandboxId: string;
  exitCode: number | undefined;
  logPath: string;
}

interface Row {
  id: string;
  environment: string;
  name: string;
  status: ContainerStatus;
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
  log_path: string;
}

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
  log_path TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS containers_active_name
  ON containers (environment, name) WHERE status IN ('Pending', 'Running', 'Unknown');
CREATE INDEX IF NOT EXISTS containers_env_created ON containers (environment, created_at);
`;

function fromRow(r: Row): ContainerRecord {
  const spec = JSON.parse(r.spec) as ContainerSpecRecord;
  return {
    ...spec,
    id: r.id,
    environment: r.environment,
    name: r.name,
    status: r.status,
    statusMessage: r.status_message,
    createdAt: r.created_at,
    stoppedAt: r.stopped_at ?? undefined,
    imageUri: r.image_uri,
    imageDigest: r.image_digest,
    cpuMillis: r.cpu_millis,
    memoryBytes: r.memory_bytes,
    gpu: r.gpu,
    address: r.address,
    sandboxId: r.sandbox_id,
    exitCode: r.exit_code ?? undefined,
    logPath: r.log_path,
  };
}

function specOf(c: ContainerSpecRecord): string {
  return JSON.stringify({
    env: c.env,
    secrets: c.secrets,
    volumes: c.volumes,
    port: c.port,
    entrypoint: c.entrypoint,
    uploadVolume: c.uploadVolume,
    cleanedUp: c.cleanedUp,
  } satisfies ContainerSpecRecord);
}

/** Fields a status change may set. */
export interface ContainerUpdate {
  status?: ContainerStatus;
  statusMessage?: string;
  stoppedAt?: number;
  imageUri?: string;
  imageDigest?: string;
  address?: string;
  sandboxId?: string;
  exitCode?: number;
  cleanedUp?: boolean;
  entrypoint?: string[];
}

/**
 * The server's state: one SQLite file (`<dataDir>/chalk.db`) in WAL mode with synchronous=FULL, so a
 * `kill -9` of the server loses no committed change. Every query is scoped to one environment.
 */
export class StateStore {
  private readonly db: Database.Database;

  private constructor(db: Database.Database) {
    this.db = db;
  }

  /** Opens (and creates or migrates) the database under `dataDir`. */
  static open(dataDir: string): StateStore {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const db = new Database(join(dataDir, "chalk.db"));
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("busy_timeout = 5000");
    db.exec(SCHEMA);
    return new StateStore(db);
  }

  /** Closes the database. */
  close(): void {
    this.db.close();
  }

  /** Inserts a new container; already_exists when an active container holds the name. */
  insert(c: ContainerRecord): void {
    try {
      this.db
        .prepare(
          `INSERT INTO containers (id, environment, name, status, status_message, created_at, stopped_at,
             image_uri, image_digest, cpu_millis, memory_bytes, gpu, spec, address, sandbox_id, exit_code, log_path)
           VALUES (@id, @environment, @name, @status, @statusMessage, @createdAt, NULL,
             @imageUri, @imageDigest, @cpuMillis, @memoryBytes, @gpu, @spec, @address, @sandboxId, NULL, @logPath)`,
        )
        .run({
          id: c.id,
          environment: c.environment,
          name: c.name,
          status: c.status,
          statusMessage: c.statusMessage,
          createdAt: c.createdAt,
          imageUri: c.imageUri,
          imageDigest: c.imageDigest,
          cpuMillis: c.cpuMillis,
          memoryBytes: c.memoryBytes,
          gpu: c.gpu,
          spec: specOf(c),
          address: c.address,
          sandboxId: c.sandboxId,
          logPath: c.logPath,
        });
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE") {
        throw new ChalkError(
          Code.AlreadyExists,
          `container ${JSON.stringify(c.name)} already exists in environment ${JSON.stringify(c.environment)} (stop it first, or pick another name)`,
          { field: "name" },
        );
      }
      throw err;
    }
  }

  /** Applies `update` to a container and returns the new record. */
  update(id: string, update: ContainerUpdate): ContainerRecord {
    const current = this.byIdAnyEnvironment(id);
    if (!current) throw new ChalkError(Code.NotFound, `container ${JSON.stringify(id)} not found`);
    const next: ContainerRecord = { ...current };
    for (const [k, v] of Object.entries(update))
      if (v !== undefined) (next as unknown as Record<string, unknown>)[k] = v;
    this.db
      .prepare(
        `UPDATE containers SET status = @status, status_message = @statusMessage, stopped_at = @stoppedAt,
           image_uri = @imageUri, image_digest = @imageDigest, address = @address, sandbox_id = @sandboxId,
           exit_code = @exitCode, spec = @spec WHERE id = @id`,
      )
      .run({
        id,
        status: next.status,
        statusMessage: next.statusMessage,
        stoppedAt: next.stoppedAt ?? null,
        imageUri: next.imageUri,
        imageDigest: next.imageDigest,
        address: next.address,
        sandboxId: next.sandboxId,
        exitCode: next.exitCode ?? null,
        spec: specOf(next),
      });
    return next;
  }

  /**
   * Moves a container to a final status unless it already has one (the first final status wins: a
   * stop that races the entrypoint's exit keeps whichever was recorded first).
   */
  finish(id: string, update: ContainerUpdate & { status: ContainerStatus }): ContainerRecord | undefined {
    const current = this.byIdAnyEnvironment(id);
    if (!current || !ACTIVE_STATUSES.includes(current.status)) return undefined;
    return this.update(id, { stoppedAt: Date.now(), ...update });
  }

  /** A container by id, in any environment (for the server's own bookkeeping). */
  byIdAnyEnvironment(id: string): ContainerRecord | undefined {
    const r = this.db.prepare("SELECT * FROM containers WHERE id = ?").get(id) as Row | undefined;
    return r && fromRow(r);
  }

  /** A container by id in `environment`. */
  byId(environment: string, id: string): ContainerRecord | undefined {
    const r = this.db
      .prepare("SELECT * FROM containers WHERE id = ? AND environment = ?")
      .get(id, environment) as Row | undefined;
    return r && fromRow(r);
  }

  /** The container of that name in `environment`: the active one, else the newest. */
  byName(environment: string, name: string): ContainerRecord | undefined {
    const r = this.db
      .prepare(
        `SELECT * FROM containers WHERE environment = ? AND name = ?
         ORDER BY status IN ('Pending', 'Running', 'Unknown') DESC, created_at DESC, rowid DESC LIMIT 1`,
      )
      .get(environment, name) as Row | undefined;
    return r && fromRow(r);
  }

  /** An environment's containers, newest first. */
  list(environment: string, options: { status?: ContainerStatus; limit: number }): ContainerRecord[] {
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

  /** Every container in an active status, in every environment (for reconciliation). */
  active(): ContainerRecord[] {
    const rows = this.db
      .prepare("SELECT * FROM containers WHERE status IN ('Pending', 'Running', 'Unknown')")
      .all() as Row[];
    return rows.map(fromRow);
  }

  /** Finished containers whose temporary resources were not removed yet. */
  uncleaned(): ContainerRecord[] {
    const rows = this.db
      .prepare(
        "SELECT * FROM containers WHERE status NOT IN ('Pending', 'Running', 'Unknown') AND json_extract(spec, '$.cleanedUp') = 0",
      )
      .all() as Row[];
    return rows.map(fromRow);
  }

  /** Number of containers per status, over every environment (for metrics). */
  countByStatus(): Record<string, number> {
    const rows = this.db.prepare("SELECT status, COUNT(*) AS n FROM containers GROUP BY status").all() as {
      status: string;
      n: number;
    }[];
    const out: Record<string, number> = {
      Pending: 0,
      Running: 0,
      Succeeded: 0,
      Failed: 0,
      Stopped: 0,
      Unknown: 0,
    };
    for (const r of rows) out[r.status] = r.n;
    return out;
  }
}
