import { invalidArgument } from "@chalk/core";
import type { Page } from "../types.js";

/** Volumes per page, unless asked otherwise. */
export const DEFAULT_VOLUME_PAGE = 100;
/** Files per page, unless asked otherwise. */
export const DEFAULT_FILE_PAGE = 1000;

/** A page size: the default for 0 or none, at most `max`. */
export function pageSizeOf(value: number | undefined, fallback: number, max: number): number {
  if (value === undefined || value === 0) return fallback;
  if (!Number.isInteger(value) || value < 0) throw invalidArgument("pageSize", "must be a positive integer");
  return Math.min(value, max);
}

/** The page token after `last`. */
export function encodeToken(last: string): string {
  return Buffer.from(last, "utf8").toString("base64url");
}

/** What a page token says comes next (invalid_argument for one this server did not issue). */
export function decodeToken(token: string | undefined): string | undefined {
  if (!token) return undefined;
  if (!/^[A-Za-z0-9_-]+$/.test(token))
    throw invalidArgument("pageToken", "is not a token this server issued");
  return Buffer.from(token, "base64url").toString("utf8");
}

/** Returns a page of sorted `items` after `token`. */
export function pageOf<T>(
  items: T[],
  key: (t: T) => string,
  size: number,
  token: string | undefined,
): Page<T> {
  const after = decodeToken(token);
  const rest = after === undefined ? items : items.filter((t) => key(t) > after);
  const page = rest.slice(0, size);
  const last = page[page.length - 1];
  return { items: page, nextPageToken: rest.length > size && last ? encodeToken(key(last)) : undefined };
}
