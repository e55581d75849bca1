import { describe, expect, test } from "vitest";
import { checkOwner, checkSecretName, checkSecretValue } from "./names.js";

describe("secret names", () => {
  test.each(["A", "_x", "OPENAI_API_KEY", "a1_b2", "X".repeat(256)])("accepts %s", (n) => {
    expect(checkSecretName(n)).toBe(n);
  });

  test.each(["", "1A", "A-B", "A B", "A.B", "Ä", "X".repeat(257), "A\0"])(
    "rejects %j naming the field",
    (n) => {
      expect(() => checkSecretName(n, "values.x")).toThrow(
        /^\[invalid_argument\] values\.x: .*accepted: an environment variable name/,
      );
    },
  );
});

describe("secret values", () => {
  test("accepts up to 64 KiB of UTF-8, including the empty string", () => {
    expect(checkSecretValue("")).toBe("");
    expect(checkSecretValue("x".repeat(65536)).length).toBe(65536);
  });

  test("refuses larger values by size, never by content", () => {
    const v = "é".repeat(40_000);
    let message = "";
    try {
      checkSecretValue(v);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toBe("[invalid_argument] value: is 80000 bytes; accepted: at most 65536 bytes of UTF-8");
  });

  test.each(["\0", "a\0b", "secret\0"])("refuses a NUL byte in %j, without echoing the value", (v) => {
    expect(() => checkSecretValue(v, "values.DB")).toThrow(
      /^\[invalid_argument\] values\.DB: holds a NUL byte \(at UTF-16 offset \d+\), which no environment variable can carry; accepted: UTF-8 text without NUL$/,
    );
  });
});

describe("owners", () => {
  test.each(["c-123", "container:abc.def_1"])("accepts %s", (o) => expect(checkOwner(o)).toBe(o));
  test.each(["", "../x", "a b", "-lead"])("rejects %j", (o) => expect(() => checkOwner(o)).toThrow(/owner/));
});
