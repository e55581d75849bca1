import { isAbsolute } from "node:path";
import { invalidArgument } from "@chalk/core";
import { z } from "zod";
import type { IntegrationInfo, SecretInfo } from "../types.js";

/** @internal The shape of {@link SecretStoreOpenOptions}, checked at open. */
export const openOptionsSchema = z.object({
  path: z.string().refine(isAbsolute, "must be an absolute path"),
  key: z.union([z.string(), z.instanceof(Uint8Array)]).optional(),
  keyFile: z.string().refine(isAbsolute, "must be an absolute path").optional(),
});

/** Options for {@link SecretStore.open}. */
export interface SecretStoreOpenOptions {
  /** Absolute path of the SQLite database file; created with mode 0600 when missing. */
  path: string;
  /**
   * The 32-byte encryption key: bytes, 64 hex digits or base64. Takes precedence over `keyFile`.
   * Keep it out of logs and command lines (read it from a file or a secret manager).
   */
  key?: Uint8Array | string;
  /**
   * Absolute path of a key file (base64 text, mode 0600). Read when it exists; created with a new
   * random key when it does not and the database is new. Default: `<path>.key`.
   */
  keyFile?: string;
}

/** Options of the listing methods. */
export interface SecretStoreListOptions {
  /** Entries per page: default 100, at most 1000. */
  pageSize?: number;
  /** `nextPageToken` of the previous page. */
  pageToken?: string;
}

/** Options for {@link SecretStore.resolve}. */
export interface SecretStoreResolveOptions {
  /** The owner whose temporary secrets `localEnv` specs resolve from. Required when there are any. */
  owner?: string;
}

/** A row of the secrets table (value sealed). */
export interface SecretRow {
  name: string;
  sealed: Buffer;
  created_at_ms: number;
  updated_at_ms: number;
}

/** A row of the integrations table (values sealed). */
export interface IntegrationRow extends SecretRow {
  keys: string;
}

/** A page size: 100 for 0 or none, at most 1000. */
export function pageSizeOf(value: number | undefined): number {
  if (value === undefined || value === 0) return 100;
  if (!Number.isInteger(value) || value < 0) throw invalidArgument("pageSize", "must be a positive integer");
  return Math.min(value, 1000);
}

/** The name a page token says to continue after. */
export function afterToken(token: string | undefined): string {
  if (!token) return "";
  if (!/^[A-Za-z0-9_]{1,256}$/.test(token))
    throw invalidArgument("pageToken", "is not a token this server issued");
  return token;
}

/** A secret row's metadata. */
export function secretInfo(row: SecretRow): SecretInfo {
  return { name: row.name, createdAt: new Date(row.created_at_ms), updatedAt: new Date(row.updated_at_ms) };
}

/** An integration row's metadata. */
export function integrationInfo(row: IntegrationRow): IntegrationInfo {
  return { ...secretInfo(row), keys: JSON.parse(row.keys) as string[] };
}
