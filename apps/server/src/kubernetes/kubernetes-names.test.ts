import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { namespaceOf } from "./kubernetes-names.js";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Environment names the server accepts (config.ts, auth.ts): 1-63 of a-z 0-9 . _ -, first alnum. */
const environment = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,62}$/);

describe("namespaceOf", () => {
  test("the issue's names: `.` and `_` become distinct DNS labels", () => {
    expect(namespaceOf("default")).toBe("chalk-default");
    expect(namespaceOf("team.a")).toBe("chalk-team-1a");
    expect(namespaceOf("team_a")).toBe("chalk-team-2a");
    expect(namespaceOf("team-a")).toBe("chalk-team-0a");
    expect(new Set(["team.a", "team_a", "team-a", "teama"].map((e) => namespaceOf(e))).size).toBe(4);
  });

  test("every accepted environment name maps to a valid namespace name", () => {
    fc.assert(
      fc.property(environment, (env) => DNS_LABEL.test(namespaceOf(env))),
      { numRuns: 2000 },
    );
    // Long names full of separators (the longest encodings), which random names rarely reach.
    const separated = fc
      .array(fc.constantFrom("a", ".", "_", "-", "9"), { minLength: 40, maxLength: 62 })
      .map((cs) => `a${cs.join("")}`);
    fc.assert(
      fc.property(separated, (env) => DNS_LABEL.test(namespaceOf(env))),
      { numRuns: 2000 },
    );
  });

  test("two different environment names never share a namespace", () => {
    fc.assert(
      fc.property(environment, environment, (a, b) => a === b || namespaceOf(a) !== namespaceOf(b)),
      { numRuns: 5000 },
    );
    // Names that differ only in a separator, or near the cut for long names.
    const long = "a".repeat(50);
    const near = [
      `${long}.b`,
      `${long}_b`,
      `${long}-b`,
      `${long}b`,
      `${long}.c`,
      `${"a".repeat(62)}`,
      `${"a".repeat(63)}`,
    ];
    expect(new Set(near.map((e) => namespaceOf(e))).size).toBe(near.length);
  });

  test("with the longest prefix, every accepted name still fits", () => {
    const prefix = `p${"x".repeat(18)}-`;
    fc.assert(
      fc.property(
        environment,
        (env) => DNS_LABEL.test(namespaceOf(env, prefix)) && namespaceOf(env, prefix).startsWith(prefix),
      ),
      { numRuns: 1000 },
    );
    expect(namespaceOf(`${"x.".repeat(31)}y`, prefix).length).toBeLessThanOrEqual(63);
  });

  test("names whose encoding is too long are cut and end in a hash of the whole name", () => {
    const env = `${"x.".repeat(31)}y`;
    const ns = namespaceOf(env);
    expect(ns.length).toBeLessThanOrEqual(63);
    expect(ns).toMatch(/-h[0-9a-f]{16}$/);
  });
});
