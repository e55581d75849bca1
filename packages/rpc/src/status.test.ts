import { ChalkError, Code } from "@chalk/core";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, test } from "vitest";
import {
  errorFromStatus,
  MAX_STATUS_DETAILS_BYTES,
  MAX_STATUS_MESSAGE_LENGTH,
  STATUS_DETAILS_TRAILER,
  statusFromError,
} from "./status.js";

/** What a grpc-js client hands over for a status: code, details and the trailers. */
const received = (s: ReturnType<typeof statusFromError>) => ({
  code: s.code,
  details: s.details,
  metadata: s.metadata,
});

describe("the wire form of errors", () => {
  test("code, message, field and details round-trip", () => {
    const err = new ChalkError(Code.FailedPrecondition, "build failed", {
      field: "spec.steps[2]",
      details: { step: 2, exitCode: 1, log: ["a", "b"], nested: { ok: false }, none: null },
    });
    const back = errorFromStatus(received(statusFromError(err, "r1")));
    expect([back.code, back.message, back.rawMessage, back.field, back.details]).toEqual([
      err.code,
      err.message,
      err.rawMessage,
      err.field,
      err.details,
    ]);
  });

  test("undefined values are dropped and bigints become decimal strings, as JSON would", () => {
    const err = new ChalkError(Code.Aborted, "x", { details: { a: undefined, b: 1n } as never });
    expect(errorFromStatus(received(statusFromError(err, "r"))).details).toEqual({ b: "1" });
  });

  test("an error that is not a ChalkError reveals only the request id", () => {
    const s = statusFromError(new Error("/etc/shadow: permission denied"), "abc123");
    expect(s).toMatchObject({ code: Code.Internal, details: "[internal] internal error (request abc123)" });
    expect(errorFromStatus(received(s)).details).toEqual({ requestId: "abc123" });
  });

  test("the trailer stays within MAX_STATUS_DETAILS_BYTES, and the message within its bound", () => {
    const err = new ChalkError(Code.InvalidArgument, "v".repeat(50_000), {
      field: "f".repeat(1000),
      details: { big: "x".repeat(100_000) },
    });
    const s = statusFromError(err, "r");
    expect((s.metadata.get(STATUS_DETAILS_TRAILER)[0] as Buffer).byteLength).toBeLessThanOrEqual(
      MAX_STATUS_DETAILS_BYTES,
    );
    expect(s.details.length).toBeLessThan(MAX_STATUS_MESSAGE_LENGTH + 40);
    expect(s.details).toMatch(/… \(\d+ more characters\)$/);
    expect(errorFromStatus(received(s)).details).toEqual({ truncated: true });
  });

  test("a status without the trailer, or with a foreign or broken one, keeps code and message", () => {
    expect(
      errorFromStatus({ code: 5, details: "[not_found] x", metadata: new grpc.Metadata() }),
    ).toMatchObject({
      code: Code.NotFound,
      rawMessage: "x",
      field: undefined,
      details: {},
    });
    const broken = new grpc.Metadata();
    broken.set(STATUS_DETAILS_TRAILER, Buffer.from([0xff, 0xff]));
    expect(errorFromStatus({ code: 14, details: "gone", metadata: broken })).toMatchObject({
      code: Code.Unavailable,
      message: "[unavailable] gone",
    });
    // A trailer whose code disagrees with the status is ignored.
    const other = statusFromError(new ChalkError(Code.NotFound, "a", { field: "x" }), "r");
    expect(errorFromStatus({ code: 3, details: "b", metadata: other.metadata }).field).toBeUndefined();
  });

  test("anything that is not a status goes through ChalkError.from", () => {
    expect(errorFromStatus(new Error("boom")).code).toBe(Code.Unknown);
    expect(errorFromStatus({ code: 99, details: "x" }).code).toBe(Code.Unknown);
  });
});
