import { Code } from "@chalk/core";
import { describe, expect, test } from "vitest";
import { fromKubernetes, withRetry } from "./kubernetes-errors.js";

const apiError = (code: number, body: object, headers: Record<string, string> = {}) =>
  Object.assign(new Error(`HTTP-Code: ${code}`), { code, body: JSON.stringify(body), headers });

describe("the Kubernetes error table", () => {
  test.each([
    [400, "BadRequest", Code.InvalidArgument],
    [401, "Unauthorized", Code.Unauthenticated],
    [403, "Forbidden", Code.PermissionDenied],
    [404, "NotFound", Code.NotFound],
    [409, "AlreadyExists", Code.AlreadyExists],
    [409, "Conflict", Code.Aborted],
    [410, "Expired", Code.Aborted],
    [422, "Invalid", Code.InvalidArgument],
    [429, "TooManyRequests", Code.ResourceExhausted],
    [500, "InternalError", Code.Unavailable],
    [503, "ServiceUnavailable", Code.Unavailable],
    [418, "Teapot", Code.Internal],
  ])("%i %s is %s", (status, reason, code) => {
    const e = fromKubernetes(
      apiError(status, { reason, message: "the server says so" }),
      "creating Pod ns/p",
    );
    expect(e.code).toBe(code);
    expect(e.message).toContain("creating Pod ns/p");
    expect(e.details).toMatchObject({ httpStatus: status });
  });

  test("a lost connection is unavailable", () => {
    const err = Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });
    expect(fromKubernetes(err, "listing Pods").code).toBe(Code.Unavailable);
  });

  test("a redacted call never carries the API server's message (it may echo a Secret)", () => {
    const e = fromKubernetes(
      apiError(422, { reason: "Invalid", message: 'data[K]: "hunter2"' }),
      "creating Secret",
      {
        redact: true,
      },
    );
    expect(e.message).not.toContain("hunter2");
    expect(JSON.stringify(e.details)).not.toContain("hunter2");
    expect(e.cause).toBeUndefined();
  });

  test("429 is retried with backoff, then succeeds; a 404 is not retried", async () => {
    let calls = 0;
    const ok = await withRetry(
      "listing",
      async () => {
        calls++;
        if (calls < 3) throw apiError(429, { reason: "TooManyRequests" }, { "retry-after": "0" });
        return "done";
      },
      { baseDelayMs: 1 },
    );
    expect(ok).toBe("done");
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      withRetry(
        "reading",
        async () => {
          calls++;
          throw apiError(404, { reason: "NotFound" });
        },
        { baseDelayMs: 1 },
      ),
    ).rejects.toMatchObject({ code: Code.NotFound });
    expect(calls).toBe(1);
  });

  test("429 that persists ends as resource_exhausted after the attempts", async () => {
    let calls = 0;
    await expect(
      withRetry(
        "creating",
        async () => {
          calls++;
          throw apiError(429, { reason: "TooManyRequests" }, { "retry-after": "0" });
        },
        { baseDelayMs: 1, attempts: 4 },
      ),
    ).rejects.toMatchObject({ code: Code.ResourceExhausted });
    expect(calls).toBe(4);
  });
});
