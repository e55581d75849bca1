import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code } from "@chalk/core";

/** The parts of a Kubernetes API failure the table reads (`ApiException` of `@kubernetes/client-node`). */
interface ApiFailure {
  code?: unknown;
  body?: unknown;
}

/** Network errors that mean the API server could not be reached or the connection broke. */
const CONNECTION_ERRORS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/**
 * How each Kubernetes API failure maps to the project's typed errors (one table, used for every
 * call the backend makes). The message names what was being done and the API server's own reason
 * (`Status.message`), never a request body: a Secret's values are never part of an error.
 *
 * | API answer | ChalkError code |
 * |---|---|
 * | 400 Bad Request, 422 Unprocessable (invalid object) | `invalid_argument` |
 * | 401 Unauthorized | `unauthenticated` |
 * | 403 Forbidden (RBAC, quota) | `permission_denied` |
 * | 404 Not Found | `not_found` |
 * | 409 Conflict (exists, or a stale resourceVersion) | `already_exists` / `aborted` |
 * | 410 Gone (a watch's resourceVersion is too old) | `aborted` |
 * | 429 Too Many Requests | `resource_exhausted` (after retries: see {@link withRetry}) |
 * | 500, 502, 503, 504 | `unavailable` |
 * | connection refused / reset / timed out | `unavailable` |
 * | anything else | `internal` |
 */
export const ERROR_TABLE: ReadonlyArray<{ status: number; code: Code }> = [
  { status: 400, code: Code.InvalidArgument },
  { status: 401, code: Code.Unauthenticated },
  { status: 403, code: Code.PermissionDenied },
  { status: 404, code: Code.NotFound },
  { status: 409, code: Code.AlreadyExists },
  { status: 410, code: Code.Aborted },
  { status: 422, code: Code.InvalidArgument },
  { status: 429, code: Code.ResourceExhausted },
  { status: 500, code: Code.Unavailable },
  { status: 502, code: Code.Unavailable },
  { status: 503, code: Code.Unavailable },
  { status: 504, code: Code.Unavailable },
];

/** The HTTP status of an API failure, if it is one. */
export function apiStatus(err: unknown): number | undefined {
  const code = (err as ApiFailure | undefined)?.code;
  return typeof code === "number" ? code : undefined;
}

function reasonOf(err: unknown): { reason: string; message: string } {
  let body = (err as ApiFailure | undefined)?.body;
  if (typeof body === "string") {
    try {
      body = JSON.parse(body);
    } catch {
      body = undefined;
    }
  }
  const b = (body ?? {}) as { reason?: unknown; message?: unknown };
  return {
    reason: typeof b.reason === "string" ? b.reason : "",
    message: typeof b.message === "string" ? b.message.slice(0, 500) : "",
  };
}

/**
 * Translates a failure of a Kubernetes API call into a ChalkError by {@link ERROR_TABLE}.
 * `what` says what was being done (`creating Pod chalk-default/c-…`). With `redact`, the API
 * server's message is left out (calls that carry Secret values).
 */
export function fromKubernetes(err: unknown, what: string, options: { redact?: boolean } = {}): ChalkError {
  if (err instanceof ChalkError) return err;
  const status = apiStatus(err);
  if (status === undefined) {
    const code = (err as { code?: unknown; cause?: { code?: unknown } } | undefined)?.code;
    const causeCode = (err as { cause?: { code?: unknown } } | undefined)?.cause?.code;
    const net = [code, causeCode].find((c) => typeof c === "string" && CONNECTION_ERRORS.has(c));
    if (net || /fetch failed|socket hang up|ECONNREFUSED|ECONNRESET/i.test(String((err as Error)?.message)))
      return new ChalkError(
        Code.Unavailable,
        `${what}: the Kubernetes API server is unreachable (${String(net ?? (err as Error)?.message ?? err)})`,
        { cause: err },
      );
    return new ChalkError(Code.Internal, `${what}: ${(err as Error)?.message ?? String(err)}`, {
      cause: err,
    });
  }
  const { reason, message } = reasonOf(err);
  let code = ERROR_TABLE.find((e) => e.status === status)?.code ?? Code.Internal;
  // A conflict on an update (a stale resourceVersion) is not a name that exists.
  if (status === 409 && reason !== "AlreadyExists") code = Code.Aborted;
  const said = options.redact || !message ? (reason ? ` (${reason})` : "") : `: ${message}`;
  return new ChalkError(code, `${what}: the Kubernetes API answered ${status}${said}`, {
    cause: options.redact ? undefined : err,
    details: { httpStatus: status, ...(reason ? { reason } : {}) },
  });
}

/** Options for {@link withRetry}. */
export interface RetryOptions {
  /** Attempts in all (default 5). */
  attempts?: number;
  /** First backoff in milliseconds, doubled each time, with jitter (default 100). */
  baseDelayMs?: number;
  /** Leave the API server's messages out of errors (calls that carry Secret values). */
  redact?: boolean;
}

/**
 * Runs one Kubernetes API call, retrying 429 (Too Many Requests, honouring `Retry-After`), 500s
 * and broken connections with exponential backoff and jitter; every other failure, and the last
 * one, is translated by {@link fromKubernetes}.
 */
export async function withRetry<T>(
  what: string,
  call: () => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? 5;
  let delay = options.baseDelayMs ?? 100;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const e = fromKubernetes(err, what, { redact: options.redact ?? false });
      const status = apiStatus(err);
      const retryable =
        status === 429 || (status !== undefined && status >= 500) || e.code === Code.Unavailable;
      if (!retryable || attempt >= attempts) throw e;
      const retryAfter = Number(
        (err as { headers?: Record<string, string> }).headers?.["retry-after"] ?? Number.NaN,
      );
      const wait = Number.isFinite(retryAfter) ? Math.min(retryAfter * 1000, 10_000) : delay;
      await sleep(wait * (0.5 + Math.random()));
      delay *= 2;
    }
  }
}
