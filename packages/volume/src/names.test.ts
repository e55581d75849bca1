import { ChalkError, Code } from "@chalk/core";
import { describe, expect, test } from "vitest";
import { checkEnvironment, checkVolumeName } from "./names.js";

describe("checkVolumeName", () => {
  test.each(["training-data", "a", "0", "v1.2_x-y", "a".repeat(63)])("accepts %j", (name) => {
    expect(checkVolumeName(name)).toBe(name);
  });

  test.each(["", "-lead", ".hidden", "..", "Upper", "with space", "a/b", "a".repeat(64), "ünï", "x\0"])(
    "rejects %j naming the field and the accepted form",
    (name) => {
      let err: unknown;
      try {
        checkVolumeName(name, "volumeName");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ChalkError);
      expect((err as ChalkError).code).toBe(Code.InvalidArgument);
      expect((err as ChalkError).message).toMatch(
        /^\[invalid_argument\] volumeName: .*accepted: 1-63 characters/,
      );
    },
  );
});

describe("checkEnvironment", () => {
  test("accepts an ordinary environment name", () => {
    expect(checkEnvironment("default")).toBe("default");
  });

  test.each(["../../etc", "", "prod/eu", "."])(
    "rejects %j, which would leave the environment's directory",
    (env) => {
      expect(() => checkEnvironment(env)).toThrow(/\[invalid_argument\] environment: /);
    },
  );
});
