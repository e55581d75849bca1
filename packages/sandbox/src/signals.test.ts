import { describe, expect, test } from "vitest";
import { runscSignalNumber } from "./signals.js";

describe("runscSignalNumber", () => {
  test("standard signals pass by name and number", () => {
    expect(runscSignalNumber("SIGTERM")).toBe(15);
    expect(runscSignalNumber(9)).toBe(9);
    expect(runscSignalNumber(31)).toBe(31);
  });

  test.each([32, 34, 54, 64, "54"])("the real-time signal %j is invalid_argument naming the field", (s) => {
    expect(() => runscSignalNumber(s)).toThrow(expect.objectContaining({ code: 3, field: "signal" }));
  });
});
