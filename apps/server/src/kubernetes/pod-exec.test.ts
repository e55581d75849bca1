import { ChalkError, Code } from "@chalk/core";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { exitFromStatus, ptySize } from "./pod-exec.js";

describe("the Pod exec API's status and terminal sizes", () => {
  test("a status gives the exit code: Success is 0, NonZeroExitCode carries it, anything else is an error", () => {
    expect(exitFromStatus({ status: "Success" })).toEqual({ exitCode: 0, error: undefined });
    expect(
      exitFromStatus({
        status: "Failure",
        reason: "NonZeroExitCode",
        details: { causes: [{ reason: "ExitCode", message: "137" }] },
      }),
    ).toEqual({ exitCode: 137, error: undefined });
    expect(exitFromStatus({ status: "Failure", message: "container not found" })).toEqual({
      exitCode: null,
      error: "container not found",
    });
  });

  test("a PTY size is Width columns by Height rows; outside 1 to 65535 is invalid_argument naming the field", () => {
    expect(ptySize(80, 24)).toEqual({ Width: 80, Height: 24 });
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: -5, max: 0 }), fc.integer({ min: 65536, max: 1 << 20 }), fc.double()),
        fc.boolean(),
        (bad, isCols) => {
          fc.pre(!(Number.isInteger(bad) && bad >= 1 && bad <= 65535));
          try {
            if (isCols) ptySize(bad, 24);
            else ptySize(80, bad);
          } catch (err) {
            const e = ChalkError.from(err);
            expect(e.code).toBe(Code.InvalidArgument);
            expect(e.message).toContain(isCols ? "pty.cols" : "pty.rows");
            return;
          }
          throw new Error(`size ${bad} was accepted`);
        },
      ),
    );
  });
});
