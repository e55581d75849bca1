import { Code } from "@chalk/core";
import { describe, expect, test } from "vitest";
import { sendableSignal, signalName, signalNumber } from "./signals.js";

describe("signals", () => {
  test.each([
    ["SIGTERM", 15],
    ["term", 15],
    ["KILL", 9],
    [" sigint ", 2],
    ["31", 31],
    [1, 1],
  ])("%j is signal %i", (signal, n) => {
    expect(signalNumber(signal)).toBe(n);
    expect(sendableSignal(signal)).toBe(n);
  });

  test("a real-time signal is a signal (an exit status may name one) but cannot be sent: runsc kill knows 1-31", () => {
    expect(signalNumber(39)).toBe(39);
    expect(signalName(39)).toBe("SIG39");
    // The name round-trips, as an exit status on the wire needs.
    expect(signalNumber(signalName(39))).toBe(39);
    expect(() => sendableSignal(39, "req.signal")).toThrow(
      expect.objectContaining({ code: Code.InvalidArgument, field: "req.signal" }),
    );
    expect(() => sendableSignal("SIG34")).toThrow(/real-time signal.*1 to 31/);
  });

  test("every integer outside 1-31 is refused for sending with invalid_argument naming the field", () => {
    const outside = [-(2 ** 31), -65, -1, 0, 32, 33, 63, 64, 65, 255, 2 ** 31, Number.MAX_SAFE_INTEGER];
    for (const n of outside) {
      expect(() => sendableSignal(n)).toThrow(
        expect.objectContaining({ code: Code.InvalidArgument, field: "signal" }),
      );
    }
    for (let n = 1; n <= 31; n++) expect(sendableSignal(n)).toBe(n);
  });

  test.each([0, -1, 1.5, Number.NaN, "", "SIGNOPE", "9x", null, {}])("%j is not a signal", (signal) => {
    expect(() => signalNumber(signal as never)).toThrow(
      expect.objectContaining({ code: Code.InvalidArgument }),
    );
  });
});
