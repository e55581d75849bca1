import Database from "better-sqlite3";

/** A recorded image: a spec digest and where its build lives. */
export interface ImageRecord {
  specDigest: string;
  manifestDigest: string;
  imageUri: string;
  sizeBytes: number;
  layerCount: number;
  createdAt: number;
}

/** A cached step: the layer a step produced on a given parent chain. */
export interface StepRecord {
  cacheKey: string;
  /** Empty when the step changed no files (no layer). */
  diffId: string;
  layerDigest: string;
  layerSize: number;
  mediaType: string;
}

/** The last build of a spec. */
export interface BuildRecord {
  specDigest: string;
  state: "building" | "failed";
  ownerPid: number;
  message: string;
  updatedAt: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS images (
  spec_digest TEXT PRIMARY KEY,
  manifest_digest TEXT NOT NULL,
  image_uri TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  layer_count INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS image_environments (
  spec_digest TEXT NOT NULL,
  environment TEXT NOT NULL,
  seen_at INTEGER NOT NULL,
  PRIMARY KEY (spec_digest, environment)
);
CREATE TABLE IF NOT EXISTS steps (
  cache_key TEXT PRIMARY KEY,
  diff_id TEXT NOT NULL,
  layer_digest TEXT NOT NULL,
  layer_size INTEGER NOT NULL,
  media_type TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS builds (
  spec_digest TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  owner_pid INTEGER NOT NULL,
  message TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bases (
  key TEXT PRIMARY KEY,
  manifest_digest TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
`;

interface ImageRow {
  spec_digest: string;
  manifest_digest: string;
  image_uri: string;
  size_bytes: number;
  layer_count: number;
  created_at: number;
}

function imageOf(r: ImageRow): ImageRecord {
  return {
    specDigest: r.spec_digest,
    manifestDigest: r.manifest_digest,
    imageUri: r.image_uri,
    sizeBytes: r.size_bytes,
    layerCount: r.layer_count,
    createdAt: r.created_at,
  };
}

/**
 * The builder's index, one SQLite file beside the OCI layout: spec digest → image, the step cache,
 * build states and base images. WAL mode, so several processes may share one store.
 */
export class ImageDb {
  readonly #db: Database.Database;

  constructor(path: string) {
    this.#db = new Database(path);
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("busy_timeout = 10000");
    this.#db.pragma("synchronous = NORMAL");
    this.#db.exec(SCHEMA);
  }

  close(): void {
    this.#db.close();
  }

  /** Runs `fn` in an IMMEDIATE transaction (one writer across processes). */
  transaction<T>(fn: () => T): T {
    return this.#db.transaction(fn).immediate();
  }

  image(specDigest: string): ImageRecord | undefined {
    const r = this.#db.prepare("SELECT * FROM images WHERE spec_digest = ?").get(specDigest) as
      | ImageRow
      | undefined;
    return r ? imageOf(r) : undefined;
  }

  allImages(): ImageRecord[] {
    return (
      this.#db.prepare("SELECT * FROM images ORDER BY created_at, spec_digest").all() as ImageRow[]
    ).map(imageOf);
  }

  putImage(r: ImageRecord): void {
    this.#db
      .prepare(
        `INSERT INTO images (spec_digest, manifest_digest, image_uri, size_bytes, layer_count, created_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (spec_digest) DO UPDATE SET manifest_digest = excluded.manifest_digest,
           image_uri = excluded.image_uri, size_bytes = excluded.size_bytes, layer_count = excluded.layer_count`,
      )
      .run(r.specDigest, r.manifestDigest, r.imageUri, r.sizeBytes, r.layerCount, r.createdAt);
    this.#db.prepare("DELETE FROM builds WHERE spec_digest = ?").run(r.specDigest);
  }

  /** Records that `environment` asked for the spec (for listing per environment). */
  touch(specDigest: string, environment: string, now: number): void {
    this.#db
      .prepare(
        `INSERT INTO image_environments (spec_digest, environment, seen_at) VALUES (?, ?, ?)
         ON CONFLICT (spec_digest, environment) DO UPDATE SET seen_at = excluded.seen_at`,
      )
      .run(specDigest, environment, now);
  }

  /** Images an environment asked for, newest first: `limit` rows after `offset`. */
  listForEnvironment(environment: string, offset: number, limit: number): ImageRecord[] {
    return (
      this.#db
        .prepare(
          `SELECT i.* FROM images i JOIN image_environments e ON e.spec_digest = i.spec_digest
           WHERE e.environment = ? ORDER BY e.seen_at DESC, e.rowid DESC LIMIT ? OFFSET ?`,
        )
        .all(environment, limit, offset) as ImageRow[]
    ).map(imageOf);
  }

  step(cacheKey: string): StepRecord | undefined {
    const r = this.#db.prepare("SELECT * FROM steps WHERE cache_key = ?").get(cacheKey) as
      | { cache_key: string; diff_id: string; layer_digest: string; layer_size: number; media_type: string }
      | undefined;
    return r
      ? {
          cacheKey: r.cache_key,
          diffId: r.diff_id,
          layerDigest: r.layer_digest,
          layerSize: r.layer_size,
          mediaType: r.media_type,
        }
      : undefined;
  }

  putStep(s: StepRecord, now: number): void {
    this.#db
      .prepare(
        `INSERT OR REPLACE INTO steps (cache_key, diff_id, layer_digest, layer_size, media_type, created_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      )
      .run(s.cacheKey, s.diffId, s.layerDigest, s.layerSize, s.mediaType, now);
  }

  deleteStep(cacheKey: string): void {
    this.#db.prepare("DELETE FROM steps WHERE cache_key = ?").run(cacheKey);
  }

  build(specDigest: string): BuildRecord | undefined {
    const r = this.#db.prepare("SELECT * FROM builds WHERE spec_digest = ?").get(specDigest) as
      | { spec_digest: string; state: string; owner_pid: number; message: string; updated_at: number }
      | undefined;
    return r
      ? {
          specDigest: r.spec_digest,
          state: r.state === "building" ? "building" : "failed",
          ownerPid: r.owner_pid,
          message: r.message,
          updatedAt: r.updated_at,
        }
      : undefined;
  }

  putBuild(b: BuildRecord): void {
    this.#db
      .prepare(
        `INSERT OR REPLACE INTO builds (spec_digest, state, owner_pid, message, updated_at) VALUES (?, ?, ?, ?, ?)`,
      )
      .run(b.specDigest, b.state, b.ownerPid, b.message, b.updatedAt);
  }

  base(key: string): string | undefined {
    const r = this.#db.prepare("SELECT manifest_digest FROM bases WHERE key = ?").get(key) as
      | { manifest_digest: string }
      | undefined;
    return r?.manifest_digest;
  }

  putBase(key: string, manifestDigest: string, now: number): void {
    this.#db
      .prepare("INSERT OR REPLACE INTO bases (key, manifest_digest, created_at) VALUES (?, ?, ?)")
      .run(key, manifestDigest, now);
  }
}
