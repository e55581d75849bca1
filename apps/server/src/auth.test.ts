import { type ChalkError, Code } from "@chalk/core";
import type { CallContext } from "@chalk/rpc";
import { describe, expect, test } from "vitest";
import { requireToken, requireValidEnvironment } from "./auth.js";
import { parseTokenFlag } from "./tokens.js";

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
  const check = requireToken([
    parseTokenFlag("first-token-aaaaaaaa@*", 0),
    parseTokenFlag("second-token-bbbbbbb@team-a,team-b", 1),
  ]);
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  test("an all-environments token acts in any environment", () => {
    for (const env of ["default", "team-a", "prod"]) {
      expect(codeOf(() => check(ctx(bearer("first-token-aaaaaaaa"), env)))).toBe(0);
    }
  });

  test("a scoped token acts in its environments and gets permission_denied elsewhere", () => {
    expect(codeOf(() => check(ctx({ authorization: "bearer second-token-bbbbbbb" }, "team-a")))).toBe(0);
    expect(codeOf(() => check(ctx(bearer("second-token-bbbbbbb"), "team-b")))).toBe(0);
    expect(codeOf(() => check(ctx(bearer("second-token-bbbbbbb"), "team-c")))).toBe(Code.PermissionDenied);
    expect(codeOf(() => check(ctx(bearer("second-token-bbbbbbb"), "default")))).toBe(Code.PermissionDenied);
  });

  test("permission_denied names the environment but not the ones the token may use", () => {
    try {
      check(ctx(bearer("second-token-bbbbbbb"), "prod"));
      expect.unreachable();
    } catch (err) {
      expect((err as ChalkError).message).toBe(
        '[permission_denied] this token may not act in environment "prod"',
      );
      expect((err as ChalkError).message).not.toContain("team-a");
    }
  });

  test("a missing, malformed or wrong token is unauthenticated, before the environment is looked at", () => {
    expect(codeOf(() => check(ctx({})))).toBe(Code.Unauthenticated);
    expect(codeOf(() => check(ctx({ authorization: "first-token-aaaaaaaa" })))).toBe(Code.Unauthenticated);
    expect(codeOf(() => check(ctx(bearer("first-token-aaaaaaaX"))))).toBe(Code.Unauthenticated);
    expect(codeOf(() => check(ctx(bearer("first"))))).toBe(Code.Unauthenticated);
    expect(codeOf(() => check(ctx(bearer("wrong-token-cccccccc"), "../etc")))).toBe(Code.Unauthenticated);
  });

  test("a malformed environment from an authenticated caller is invalid_argument, for scoped tokens too", () => {
    expect(codeOf(() => check(ctx(bearer("first-token-aaaaaaaa"), "../etc")))).toBe(Code.InvalidArgument);
    expect(codeOf(() => check(ctx(bearer("second-token-bbbbbbb"), "Team-A")))).toBe(Code.InvalidArgument);
  });

  test("the error never echoes the presented token", () => {
    try {
      check(ctx(bearer("very-secret-guess")));
    } catch (err) {
      expect((err as ChalkError).message).not.toContain("very-secret-guess");
    }
  });

  test("environment names are validated", () => {
    expect(codeOf(() => requireValidEnvironment(ctx({}, "prod-1")))).toBe(0);
    expect(codeOf(() => requireValidEnvironment(ctx({}, "../etc")))).toBe(Code.InvalidArgument);
    expect(codeOf(() => requireValidEnvironment(ctx({}, "Prod")))).toBe(Code.InvalidArgument);
  });
});
