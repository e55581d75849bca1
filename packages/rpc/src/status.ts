/**
 * The wire form of a ChalkError: a gRPC status plus the binary trailer `grpc-status-details-bin`
 * holding a `chalk.rpc.v1.Status` (field-compatible with `google.rpc.Status`) whose details carry one
 * `chalk.rpc.v1.ErrorDetail` (field and JSON details). See `proto/chalk/rpc/v1/status.proto`.
 */
import { create, fromBinary, type JsonObject, toBinary } from "@bufbuild/protobuf";
import { anyPack, anyUnpack } from "@bufbuild/protobuf/wkt";
import { ChalkError, Code, type ErrorDetails } from "@chalk/core";
import { ErrorDetailSchema, StatusSchema } from "@chalk/proto/rpc/v1";
import * as grpc from "@grpc/grpc-js";

/** The trailer that carries the status details, as gRPC defines it. */
export const STATUS_DETAILS_TRAILER = "grpc-status-details-bin";

/** Largest encoded status details a server sends; larger details become `{ truncated: true }`. */
export const MAX_STATUS_DETAILS_BYTES = 8 * 1024;

/**
 * Longest error message a server sends, in UTF-16 units; a longer one is cut there and ends with
 * "… (N more characters)". Messages quote request values, and HTTP/2 limits a header block (64 KiB by
 * default): an unbounded message would drop the client's connection instead of failing one call.
 */
export const MAX_STATUS_MESSAGE_LENGTH = 1024;

/** The message as it goes on the wire: at most {@link MAX_STATUS_MESSAGE_LENGTH} characters. */
function boundedMessage(message: string): string {
  if (message.length <= MAX_STATUS_MESSAGE_LENGTH) return message;
  let cut = MAX_STATUS_MESSAGE_LENGTH;
  // Do not split a surrogate pair.
  if (/[\ud800-\udbff]/.test(message[cut - 1] ?? "")) cut--;
  return `${message.slice(0, cut)}… (${message.length - cut} more characters)`;
}

/** What grpc-js needs to end a call with an error. */
export interface WireStatus {
  code: number;
  details: string;
  metadata: grpc.Metadata;
}

/** JSON-normalises details (drops undefined, bigint as a decimal string), or undefined when it cannot. */
function jsonOf(details: ErrorDetails): JsonObject | undefined {
  try {
    return JSON.parse(
      JSON.stringify(details, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)),
    ) as JsonObject;
  } catch {
    return undefined;
  }
}

function encodeDetails(
  code: number,
  message: string,
  field: string,
  details: JsonObject | undefined,
): Buffer {
  const detail = create(ErrorDetailSchema, { field, ...(details ? { details } : {}) });
  const status = create(StatusSchema, { code, message, details: [anyPack(ErrorDetailSchema, detail)] });
  return Buffer.from(toBinary(StatusSchema, status));
}

/**
 * The status a server sends for an error thrown by a handler. A ChalkError keeps its code, message,
 * field and details; any other error becomes a generic internal error that reveals nothing but the
 * request id (the server logs the real error under that id).
 */
export function statusFromError(err: unknown, requestId: string): WireStatus {
  const e =
    err instanceof ChalkError
      ? err
      : new ChalkError(Code.Internal, `internal error (request ${requestId})`, { details: { requestId } });
  const metadata = new grpc.Metadata();
  const message = boundedMessage(e.message);
  const field = e.field ?? "";
  const keys = Object.keys(e.details).length;
  let bin = encodeDetails(e.code, message, field, keys > 0 ? jsonOf(e.details) : undefined);
  if (bin.byteLength > MAX_STATUS_DETAILS_BYTES) {
    bin = encodeDetails(e.code, message, field.slice(0, 256), { truncated: true });
  }
  metadata.set(STATUS_DETAILS_TRAILER, bin);
  return { code: e.code, details: message, metadata };
}

/** A grpc-js status error, or anything with a numeric code and details. */
interface StatusLike {
  code?: unknown;
  details?: unknown;
  message?: unknown;
  metadata?: unknown;
}

/** The field and details a Chalk server put in the status trailer, when it is there and well-formed. */
function detailOf(metadata: unknown, code: number): { field?: string; details?: ErrorDetails } | undefined {
  if (!(metadata instanceof grpc.Metadata)) return undefined;
  const bin = metadata.get(STATUS_DETAILS_TRAILER)[0];
  if (!Buffer.isBuffer(bin)) return undefined;
  try {
    const status = fromBinary(StatusSchema, bin);
    if (status.code !== code) return undefined;
    for (const any of status.details) {
      const d = anyUnpack(any, ErrorDetailSchema);
      if (!d) continue;
      return {
        ...(d.field ? { field: d.field } : {}),
        ...(d.details ? { details: d.details as ErrorDetails } : {}),
      };
    }
  } catch {
    // A trailer we cannot read: the code and message still stand.
  }
  return undefined;
}

/**
 * Turns a grpc-js client error into the ChalkError the server threw: code, message, and (from a
 * Chalk server's status details) field and details. Errors that are not gRPC statuses go through
 * {@link ChalkError.from}.
 */
export function errorFromStatus(err: unknown): ChalkError {
  if (err instanceof ChalkError) return err;
  const s = (err ?? {}) as StatusLike;
  if (typeof s.code === "number" && Number.isInteger(s.code) && s.code > 0 && s.code <= 16) {
    const message = typeof s.details === "string" && s.details !== "" ? s.details : String(s.message ?? "");
    return new ChalkError(s.code as Code, message, { cause: err, ...detailOf(s.metadata, s.code) });
  }
  return ChalkError.from(err);
}
