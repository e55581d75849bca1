import { describe, expect, test } from "vitest";
import { ChalkError, Code } from "./errors.js";
import { parseCpu, parseGpu, parseMemory } from "./resource-quantity.js";

describe("parseCpu", () => {
  test.each([
    ["2", 2000],
    ["0.5", 500],
    [".25", 250],
    ["500m", 500],
    ["1", 1000],
  ])("accepts %s as %i millicores", (input, expected) => {
    expect(parseCpu(input)).toBe(expected);
  });

  test.each(["", "abc", "-1", "0", "1.5.2", "500M", "2 cores", "0m", " 1", "500m "])(
    "rejects %j naming the field",
    (input) => {
      const err = (() => {
        try {
          parseCpu(input, "resources.cpu");
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(ChalkError);
      expect((err as ChalkError).code).toBe(Code.InvalidArgument);
      expect((err as ChalkError).message).toMatch(/^\[invalid_argument\] resources\.cpu: .*accepted: /);
    },
  );
});

describe("parseMemory", () => {
  test.each([
    ["512Mi", 512 * 2 ** 20],
    ["2Gi", 2 * 2 ** 30],
    ["1G", 1e9],
    ["64Mi", 64 * 2 ** 20],
    ["8388608", 8388608],
    ["1.5Gi", 1.5 * 2 ** 30],
  ])("accepts %s", (input, expected) => {
    expect(parseMemory(input)).toBe(expected);
  });

  test.each(["", "2GB", "lots", "-5Mi", "1Ki", "0", "2 Gi", " 1Gi", "1Gi ", "1Gi\n"])(
    "rejects %j",
    (input) => {
      expect(() => parseMemory(input)).toThrow(/\[invalid_argument\] memory: /);
    },
  );
});

describe("parseGpu", () => {
  test("type:count", () => expect(parseGpu("nvidia-l4:2")).toEqual({ type: "nvidia-l4", count: 2 }));
  test("type alone means one", () => expect(parseGpu("nvidia-l4")).toEqual({ type: "nvidia-l4", count: 1 }));
  test("count alone", () => expect(parseGpu("2")).toEqual({ type: undefined, count: 2 }));
  test.each(["", "a:b:c", "nvidia-l4:0", "NVIDIA:1", "x:1.5", ":1"])("rejects %j", (input) => {
    expect(() => parseGpu(input)).toThrow(/\[invalid_argument\] gpu: /);
  });
});

describe("ChalkError", () => {
  test("message carries the code prefix once", () => {
    const e = new ChalkError(Code.NotFound, "[not_found] sandbox x not found");
    expect(e.message).toBe("[not_found] sandbox x not found");
    expect(e.rawMessage).toBe("sandbox x not found");
  });

  test("from() translates Node system errors", () => {
    const sys = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    expect(ChalkError.from(sys).code).toBe(Code.Unavailable);
    expect(ChalkError.from("boom").code).toBe(Code.Unknown);
  });
});
