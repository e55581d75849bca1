/**
 * Status codes, numerically equal to gRPC's, so a server maps a {@link ChalkError} to a gRPC status
 * without a table and a client maps it back.
 */
export enum Code {
  /** Cancelled by the caller. */
  Canceled = 1,
  /** An error with no better code. */
  Unknown = 2,
  /** The request is malformed; the message names the field and what is accepted. */
  InvalidArgument = 3,
  /** A deadline or timeout passed. */
  DeadlineExceeded = 4,
  /** The named object does not exist (or belongs to another environment). */
  NotFound = 5,
  /** An object with that name or id exists already. */
  AlreadyExists = 6,
  /** The caller may not do this. */
  PermissionDenied = 7,
  /** A limit was hit (memory, processes, payload size). */
  ResourceExhausted = 8,
  /** The system is not in a state that allows this (a stopped sandbox, no GPU on this machine). */
  FailedPrecondition = 9,
  /** The operation was aborted, usually by a concurrent change. */
  Aborted = 10,
  /** A value is outside the accepted range. */
  OutOfRange = 11,
  /** Not implemented by this server or backend. */
  Unimplemented = 12,
  /** A bug or broken invariant. */
  Internal = 13,
  /** The service cannot be reached or a dependency (runsc, a registry) is missing. */
  Unavailable = 14,
  /** Data was lost or corrupted. */
  DataLoss = 15,
  /** No valid credentials. */
  Unauthenticated = 16,
}

const codeNames: Record<Code, string> = {
  [Code.Canceled]: "canceled",
  [Code.Unknown]: "unknown",
  [Code.InvalidArgument]: "invalid_argument",
  [Code.DeadlineExceeded]: "deadline_exceeded",
  [Code.NotFound]: "not_found",
  [Code.AlreadyExists]: "already_exists",
  [Code.PermissionDenied]: "permission_denied",
  [Code.ResourceExhausted]: "resource_exhausted",
  [Code.FailedPrecondition]: "failed_precondition",
  [Code.Aborted]: "aborted",
  [Code.OutOfRange]: "out_of_range",
  [Code.Unimplemented]: "unimplemented",
  [Code.Internal]: "internal",
  [Code.Unavailable]: "unavailable",
  [Code.DataLoss]: "data_loss",
  [Code.Unauthenticated]: "unauthenticated",
};

/** The snake_case name of a code, as it appears in messages: `not_found`. */
export function codeName(code: Code): string {
  return codeNames[code] ?? `code_${code}`;
}

/**
 * A JSON value: what {@link ChalkError.details} may hold, so that details survive the wire (gRPC
 * carries them as a `google.protobuf.Struct`) and a remote error equals the in-process one.
 */
export type ErrorDetailValue =
  | string
  | number
  | boolean
  | null
  | readonly ErrorDetailValue[]
  | { readonly [key: string]: ErrorDetailValue };

/**
 * Structured details of a {@link ChalkError}: JSON values a caller may branch on.
 *
 * They go to the caller who made the request (through gRPC when remote), so they hold only what that
 * caller may read anyway: names and ids the caller used, statuses and status messages, counts,
 * sizes and limits, exit codes and signals, the build step that failed, the names of missing
 * secrets, the caller's own command output. Never a secret value (not even the caller's own:
 * secrets are write-only), a token, a key, a host path, or anything of another environment.
 */
export type ErrorDetails = { readonly [key: string]: ErrorDetailValue };

/** Options for {@link ChalkError}. */
export interface ChalkErrorOptions {
  /** The error that caused this one. Never shown in the message, and never sent over the wire. */
  cause?: unknown;
  /** The request field the error is about, as a dotted path (`resources.memory`). */
  field?: string | undefined;
  /** Structured data a caller may branch on (partial output of a timed-out exec, …). */
  details?: ErrorDetails | undefined;
}

const prefixPattern = /^\[([a-z_]+)\] /;

/**
 * The brand every ChalkError carries, under a registry symbol: `instanceof ChalkError` recognises
 * errors made by another copy of `@chalk/core` (two versions in one `node_modules`, or a bundled
 * copy) because the symbol is the same in every copy.
 */
const brand: unique symbol = Symbol.for("@chalk/core.ChalkError") as never;

/**
 * The one error class of every Chalk package. Its message starts with the code
 * (`[not_found] sandbox "x" not found`) because tools often show only the message.
 *
 * Through gRPC a ChalkError keeps its code, message, field and details (`@chalk/rpc` sends them in
 * the status details), so a caller sees the same error whether it ran in process or on a server.
 * `instanceof ChalkError` holds for ChalkErrors made by any copy of this package.
 *
 * @example
 * ```ts
 * try {
 *   await runtime.get("nope");
 * } catch (err) {
 *   if (ChalkError.from(err).code === Code.NotFound) console.log("gone");
 * }
 * ```
 */
export class ChalkError extends Error {
  /** The status code; equal to the gRPC status code. */
  readonly code: Code;
  /** The message without the `[code]` prefix. */
  readonly rawMessage: string;
  /** The request field this error is about, when there is one. */
  readonly field: string | undefined;
  /** Structured details, when the thrower had any (else `{}`); see {@link ErrorDetails}. */
  readonly details: ErrorDetails;

  constructor(code: Code, message: string, options: ChalkErrorOptions = {}) {
    const raw = message.replace(prefixPattern, "");
    super(`[${codeName(code)}] ${raw}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ChalkError";
    this.code = code;
    this.rawMessage = raw;
    this.field = options.field;
    this.details = options.details ?? {};
  }

  /**
   * True for a ChalkError of any copy of this package (by its brand); for subclasses, the usual
   * prototype check.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // `this` is the class on the right of instanceof: ChalkError itself, or a subclass.
    // biome-ignore lint/complexity/noThisInStatic: the receiver decides which check applies.
    if (this !== ChalkError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === "object" && value !== null && (value as { [brand]?: unknown })[brand] === true;
  }

  /**
   * Wraps anything thrown into a ChalkError: a ChalkError is returned as is, Node system errors are
   * translated (`ECONNREFUSED` → unavailable, `ENOENT` → not_found, …), anything else is unknown.
   */
  static from(err: unknown, fallback: Code = Code.Unknown): ChalkError {
    if (err instanceof ChalkError) return err;
    if (err instanceof Error) {
      const sys = (err as NodeJS.ErrnoException).code;
      const mapped = sys ? systemErrorCodes[sys] : undefined;
      return new ChalkError(mapped ?? fallback, err.message, { cause: err });
    }
    return new ChalkError(fallback, String(err), { cause: err });
  }
}
Object.defineProperty(ChalkError.prototype, brand, { value: true });

/** Node system error codes, translated once here. */
const systemErrorCodes: Record<string, Code> = {
  ECONNREFUSED: Code.Unavailable,
  ECONNRESET: Code.Unavailable,
  EHOSTUNREACH: Code.Unavailable,
  ETIMEDOUT: Code.DeadlineExceeded,
  ENOENT: Code.NotFound,
  EEXIST: Code.AlreadyExists,
  EACCES: Code.PermissionDenied,
  EPERM: Code.PermissionDenied,
  ENOSPC: Code.ResourceExhausted,
  EMFILE: Code.ResourceExhausted,
};

/** An invalid-argument error that names the field and what is accepted. */
export function invalidArgument(field: string, problem: string, accepted?: string): ChalkError {
  const tail = accepted ? `; accepted: ${accepted}` : "";
  return new ChalkError(Code.InvalidArgument, `${field}: ${problem}${tail}`, { field });
}

/**
 * A value from a request, quoted for a message: JSON string syntax (so NUL, newlines and quotes
 * show as escapes), at most `max` characters of it, then "…". Messages name what they refused
 * without repeating a megabyte of it.
 */
export function quote(value: string, max = 128): string {
  return value.length <= max ? JSON.stringify(value) : `${JSON.stringify(value.slice(0, max))}…`;
}

/** A not-found error for a kind of object and its name or id (quoted, at most 128 characters). */
export function notFound(kind: string, id: string): ChalkError {
  return new ChalkError(Code.NotFound, `${kind} ${quote(id)} not found`);
}
