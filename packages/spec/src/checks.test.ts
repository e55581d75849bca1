import { describe, expect, test } from "vitest";
import { fieldOf } from "../test/field-of.js";
import {
  checkCommand,
  checkContainerId,
  checkContainerName,
  checkEnv,
  checkMountPath,
  checkPort,
  checkResources,
  checkSeconds,
  checkTailLines,
  checkVolumes,
} from "./checks.js";

describe("container input validation", () => {
  test("names are DNS labels", () => {
    expect(checkContainerName("hello-container")).toBe("hello-container");
    for (const bad of ["", "Hello", "-x", "x-", "a_b", "a".repeat(64), "x.y", 5]) {
      expect(fieldOf(() => checkContainerName(bad))).toBe("name");
    }
  });

  test("resources follow Kubernetes conventions and name the field", () => {
    expect(checkResources({ cpu: "500m", memory: "2Gi", gpu: "nvidia-l4:1" })).toEqual({
      cpuMillis: 500,
      memoryBytes: 2 * 2 ** 30,
      gpu: { type: "nvidia-l4", count: 1 },
    });
    expect(checkResources({})).toEqual({ cpuMillis: undefined, memoryBytes: undefined, gpu: undefined });
    expect(fieldOf(() => checkResources({ cpu: "lots" }))).toBe("cpu");
    expect(fieldOf(() => checkResources({ memory: "2GB" }))).toBe("memory");
    expect(fieldOf(() => checkResources({ gpu: "a:b:c" }))).toBe("gpu");
  });

  test("env names and values are checked", () => {
    expect(checkEnv({ LOG_LEVEL: "INFO" })).toEqual({ LOG_LEVEL: "INFO" });
    expect(fieldOf(() => checkEnv({ "1X": "a" }))).toBe("env.1X");
    expect(fieldOf(() => checkEnv({ X: "a\0b" }))).toBe("env.X");
    expect(fieldOf(() => checkEnv({ X: 5 }))).toBe("env.X");
    expect(fieldOf(() => checkEnv(["X=1"]))).toBe("env");
  });

  test("volumes are [name, absolute path] pairs on distinct paths", () => {
    expect(checkVolumes([["training-data", "/data"]])).toEqual([["training-data", "/data"]]);
    expect(fieldOf(() => checkVolumes([["vol", "data"]]))).toBe("volumes[0][1]");
    expect(fieldOf(() => checkVolumes([["Vol!", "/data"]]))).toBe("volumes[0][0]");
    expect(fieldOf(() => checkVolumes([["vol"]]))).toBe("volumes[0]");
    expect(fieldOf(() => checkVolumes({ vol: "/data" }))).toBe("volumes");
    expect(
      fieldOf(() =>
        checkVolumes([
          ["a", "/d"],
          ["b", "/d"],
        ]),
      ),
    ).toBe("volumes[1][1]");
  });

  test("mount paths are absolute, normalized and not system directories", () => {
    expect(checkMountPath("/data/x", "p")).toBe("/data/x");
    for (const bad of ["/", "/proc", "/sys/x", "/dev", "/a/../b", "/a/./b", "/a/", "//a", "a", "/a\0"]) {
      expect(fieldOf(() => checkMountPath(bad, "p"))).toBe("p");
    }
  });

  test("ports are 1 to 65535", () => {
    expect(checkPort(8080)).toBe(8080);
    expect(checkPort(undefined)).toBeUndefined();
    for (const bad of [-1, 65536, 80.5, "80"]) expect(fieldOf(() => checkPort(bad))).toBe("port");
  });

  test("commands are non-empty string lists without NUL bytes", () => {
    expect(checkCommand(["ls", "-la"], "command")).toEqual(["ls", "-la"]);
    expect(fieldOf(() => checkCommand([], "command"))).toBe("command");
    expect(fieldOf(() => checkCommand([""], "command"))).toBe("command[0]");
    expect(fieldOf(() => checkCommand(["a\0"], "command"))).toBe("command[0]");
    expect(fieldOf(() => checkCommand("ls -la", "command"))).toBe("command");
  });

  test("durations and ids", () => {
    expect(checkSeconds(5, "t", 10)).toBe(5);
    for (const bad of [-1, 11, Number.NaN, Number.POSITIVE_INFINITY, "5"]) {
      expect(fieldOf(() => checkSeconds(bad, "t", 10))).toBe("t");
    }
    expect(checkContainerId("550e8400-e29b-41d4-a716-446655440000")).toBeTruthy();
    expect(fieldOf(() => checkContainerId("550e8400"))).toBe("id");
  });

  test("a log tail is a whole number of lines; 0 and undefined mean everything", () => {
    expect(checkTailLines(undefined)).toBe(0);
    expect(checkTailLines(0)).toBe(0);
    expect(checkTailLines(20)).toBe(20);
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 32, "10"]) {
      expect(fieldOf(() => checkTailLines(bad))).toBe("tailLines");
    }
  });
});
