import { ChalkError, Code } from "@chalk/core";
import { expect } from "vitest";

/** Runs a check that must fail with invalid_argument and returns the field the error names. */
export function fieldOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ChalkError);
    expect((err as ChalkError).code).toBe(Code.InvalidArgument);
    return (err as ChalkError).field;
  }
  throw new Error("expected invalid_argument");
}
