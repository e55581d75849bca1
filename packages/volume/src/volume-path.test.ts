import { ChalkError, Code } from "@chalk/core";
import { describe, expect, test } from "vitest";
import { parseVolumePath, parseVolumePrefix } from "./volume-path.js";

function rejection(fn: () => unknown): ChalkError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ChalkError) return err;
    throw err;
  }
  throw new Error("expected a ChalkError");
}

describe("parseVolumePath", () => {
  test.each([
    ["a.txt", ["a.txt"]],
    ["inputs/example.txt", ["inputs", "example.txt"]],
    ["a//b///c", ["a", "b", "c"]],
    ["./a/./b", ["a", "b"]],
    ["dir.with.dots/..hidden", ["dir.with.dots", "..hidden"]],
    ["spaces are fine/ünïcødé ✓", ["spaces are fine", "ünïcødé ✓"]],
    ["...", ["..."]],
    [`${"x".repeat(255)}/y`, ["x".repeat(255), "y"]],
  ])("normalizes %s", (input, expected) => {
    expect(parseVolumePath(input)).toEqual(expected);
  });

  test.each([
    ["empty", "", /must not be empty/],
    ["'.'", ".", /must name a file/],
    ["'./'", "./", /must name a file/],
    ["absolute", "/etc/passwd", /must be relative/],
    ["double-slash absolute", "//x", /must be relative/],
    ["'..'", "..", /'\.\.'/],
    ["leading '..'", "../x", /'\.\.'/],
    ["inner '..'", "a/../b", /'\.\.'/],
    ["trailing '..'", "a/b/..", /'\.\.'/],
    ["NUL", "a\0b", /NUL/],
    ["newline", "a\nb", /control characters/],
    ["backslashes", "a\\..\\b", /backslashes/],
    ["trailing slash", "dir/", /trailing/],
    ["256-byte name", "x".repeat(256), /longer than 255 bytes/],
    ["256-byte UTF-8 name", "é".repeat(128), /longer than 255 bytes/],
    ["4097-byte path", `${"abcdefgh/".repeat(455)}xy`, /longer than 4096 bytes/],
    ["lone surrogate", "bad\uD800surrogate", /well-formed/],
  ])("rejects a path that is %s with invalid_argument naming the field", (_label, input, problem) => {
    const err = rejection(() => parseVolumePath(input, "header.path"));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.field).toBe("header.path");
    expect(err.message).toMatch(/^\[invalid_argument\] header\.path: /);
    expect(err.message).toMatch(problem);
  });

  test("accepts a path of exactly 4096 bytes", () => {
    expect(parseVolumePath(`${"abcdefgh/".repeat(455)}x`)).toHaveLength(456);
  });

  test("rejects a value that is not a string", () => {
    expect(rejection(() => parseVolumePath(42)).code).toBe(Code.InvalidArgument);
  });
});

describe("parseVolumePrefix", () => {
  test.each([
    [undefined, ""],
    ["", ""],
    ["data/", "data/"],
    ["./data//a", "data/a"],
    ["data/sub/", "data/sub/"],
  ])("normalizes %j to %j", (input, expected) => {
    expect(parseVolumePrefix(input)).toBe(expected);
  });

  test.each(["/abs", "../up", "a/../b", "nul\0"])("rejects %j", (input) => {
    expect(rejection(() => parseVolumePrefix(input)).field).toBe("prefix");
  });
});
