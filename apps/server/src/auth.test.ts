import { ChalkError, Code } from "@chalk/core";
import type { CallContext } from "@chalk/rpc";
import { describe, expect, test } from "vitest";
import { requireToken, requireValidEnvironment } from "./auth.js";

const ctx = (headers: Record<string, string>, environment = "default") =>
  ({ environment, metadata: (k: string) => headers[k] }) as unknown as CallContext;

const codeOf = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return (err as ChalkError).code;
  }
  return 0;
};

describe("auth", () => {
  const check = requireToken(["first-token-aaaaaaaa", "second-token-bbbbbbb"]);
  test("any configured token is accepted", () => {
    expect(codeOf(() => check(ctx({ authorization: "Bearer first-token-aaaaaaaa" })))).toBe(0);
    expect(codeOf(() => check(ctx({ authorization: "bearer second-token-bbbbbbb" })))).toBe(0);
  });
  test("a missing, malformed or wrong token is unauthenticated", () => {
    expect(codeOf(() => check(ctx({})))).toBe(Code.Unauthenticated);
    expect(codeOf(() => check(ctx({ authorization: "first-token-aaaaaaaa" })))).toBe(Code.Unauthenticated);
    expect(codeOf(() => check(ctx({ authorization: "Bearer first-token-aaaaaaaX" })))).toBe(
      Code.Unauthenticated,
    );
    expect(codeOf(() => check(ctx({ authorization: "Bearer first" })))).toBe(Code.Unauthenticated);
  });
  test("the error never echoes the presented token", () => {
    try {
      check(ctx({ authorization: "Bearer very-secret-guess" }));
    } catch (err) {
      expect((err as ChalkError).message).not.toContain("very-secret-guess");
    }
  });
  test("environment names are validated", () => {
    expect(codeOf(() => requireValidEnvironment(ctx({}, "prod-1")))).toBe(0);
    expect(codeOf(() => requireValidEnvironment(ctx({}, "../etc")))).toBe(Code.InvalidArgument);
    expect(codeOf(() => requireValidEnvironment(ctx({}, "Prod")))).toBe(Code.InvalidArgument);
    expect(ChalkError).toBeDefined();
  });
});
