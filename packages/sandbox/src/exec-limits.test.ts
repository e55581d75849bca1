import { ChalkError, Code } from "@chalk/core";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { checkExecLimits, EXEC_LIMITS } from "./exec-limits.js";

const max = EXEC_LIMITS.maxArgStrlen;

function errorOf(fn: () => void): ChalkError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ChalkError);
    return err as ChalkError;
  }
  throw new Error("expected a failure");
}

describe("the kernel's limits on argv and environment", () => {
  test("a string of exactly max - 1 bytes (max with its NUL) passes; one more byte fails", () => {
    checkExecLimits(["a".repeat(max - 1)], {});
    checkExecLimits([], { K: "v".repeat(max - 1 - "K=".length) });
    expect(errorOf(() => checkExecLimits(["a".repeat(max)], {}))).toMatchObject({
      code: Code.InvalidArgument,
      field: "argv[0]",
    });
    const err = errorOf(() => checkExecLimits([], { K: "v".repeat(max - "K=".length) }));
    expect(err).toMatchObject({ code: Code.InvalidArgument, field: "env.K" });
    expect(err.message).toContain(String(max));
  });

  test("bytes are UTF-8 bytes, not characters", () => {
    const half = "é".repeat(max / 2); // 2 bytes each
    expect(errorOf(() => checkExecLimits([half], {})).field).toBe("argv[0]");
  });

  test("the fields are named as the caller says", () => {
    expect(errorOf(() => checkExecLimits(["x", "y".repeat(max)], {}, "command")).field).toBe("command[1]");
  });

  test("any set of strings under the per-string limit passes iff the total is within ARG_MAX less the margin", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: max - 1 }), { maxLength: 40 }),
        fc.dictionary(fc.stringMatching(/^[A-Z][A-Z0-9_]{0,7}$/), fc.integer({ min: 0, max: max - 12 }), {
          maxKeys: 40,
        }),
        (argLengths, envLengths) => {
          const argv = argLengths.map((n) => "a".repeat(n));
          const env = Object.fromEntries(Object.entries(envLengths).map(([k, n]) => [k, "b".repeat(n)]));
          const total =
            argLengths.reduce((t, n) => t + n + 1 + 8, 0) +
            Object.entries(envLengths).reduce((t, [k, n]) => t + k.length + 1 + n + 1 + 8, 0);
          const within = total <= EXEC_LIMITS.argMax - EXEC_LIMITS.argMaxMargin;
          let passed = true;
          try {
            checkExecLimits(argv, env);
          } catch (err) {
            passed = false;
            expect((err as ChalkError).field).toBe("env");
            expect((err as ChalkError).message).toMatch(/ARG_MAX/);
          }
          expect(passed).toBe(within);
        },
      ),
      { numRuns: 200 },
    );
  });
});
