import { describe, expect, test } from "vitest";
import { runOperands } from "./commands/run.js";
import { parseEnvFlags } from "./env-flags.js";
import { UsageError } from "./errors.js";
import { formatBytes, formatDuration, parseDuration, table } from "./format.js";

describe("formats", () => {
  test("durations: units and plain seconds; anything else is undefined", () => {
    expect(parseDuration("30s")).toBe(30);
    expect(parseDuration("1m30s")).toBe(90);
    expect(parseDuration("500ms")).toBe(0.5);
    expect(parseDuration("2h")).toBe(7200);
    expect(parseDuration("10")).toBe(10);
    expect(parseDuration("0")).toBe(0);
    for (const bad of ["", "s", "-1s", "1d", "abc", "1 m", "1.5.5s"])
      expect(parseDuration(bad)).toBeUndefined();
    expect(formatDuration(850)).toBe("850ms");
    expect(formatDuration(3200)).toBe("3.2s");
    expect(formatDuration(125_000)).toBe("2m05s");
  });

  test("sizes in binary units; tables padded to their widest cell", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(3 * 2 ** 30)).toBe("3.0 GiB");
    expect(
      table(
        ["A", "BB"],
        [
          ["xxx", "y"],
          ["z", ""],
        ],
      ),
    ).toBe("A    BB\nxxx  y\nz\n");
  });
});

describe("run's operands", () => {
  test("the image, then the command after --", () => {
    expect(runOperands(["img", "echo", "hi"], ["run", "img", "--", "echo", "hi"], false)).toEqual({
      image: "img",
      command: ["echo", "hi"],
    });
    expect(runOperands(["img"], ["run", "img"], false)).toEqual({ image: "img", command: [] });
    expect(
      runOperands(["sh", "-c", "x"], ["run", "--image-file", "f.ts", "--", "sh", "-c", "x"], true),
    ).toEqual({
      image: undefined,
      command: ["sh", "-c", "x"],
    });
    // A command's own "--" stays in the command.
    expect(runOperands(["img", "a", "--", "b"], ["run", "img", "--", "a", "--", "b"], false).command).toEqual(
      ["a", "--", "b"],
    );
  });

  test("a command without --, or an image with --image-file, is a usage error", () => {
    expect(() => runOperands(["img", "echo"], ["run", "img", "echo"], false)).toThrow(UsageError);
    expect(() => runOperands(["img", "x"], ["run", "--image-file", "f", "img", "--", "x"], true)).toThrow(
      UsageError,
    );
  });
});

describe("-e flags", () => {
  test("K=V, and K copied from this environment", () => {
    process.env.CHALK_TEST_COPIED = "from-here";
    expect(parseEnvFlags(["A=1", "B=x=y", "C=", "CHALK_TEST_COPIED"])).toEqual({
      A: "1",
      B: "x=y",
      C: "",
      CHALK_TEST_COPIED: "from-here",
    });
    for (const bad of ["1A=x", "=x", "A-B=1", "CHALK_TEST_UNSET_VAR"]) {
      expect(() => parseEnvFlags([bad])).toThrow(UsageError);
    }
  });
});
