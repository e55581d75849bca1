import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { defaultRunscPath, parseRunscVersion, RUNSC_VERSION } from "./runsc-binary.js";

describe("the pinned runsc", () => {
  test("RUNSC_VERSION is the gVisor version pinned in tooling/gvisor/go.mod", () => {
    const goMod = readFileSync(join(import.meta.dirname, "../../../../tooling/gvisor/go.mod"), "utf8");
    const pinned = /^require gvisor\.dev\/gvisor (\S+)$/m.exec(goMod)?.[1];
    expect(pinned).toBeDefined();
    expect(RUNSC_VERSION).toBe(pinned);
  });

  test("the default path is the build cache's, under CHALK_CACHE when set", () => {
    expect(defaultRunscPath({})).toBe(`/var/cache/chalk/gvisor/${RUNSC_VERSION}/runsc`);
    expect(defaultRunscPath({ CHALK_CACHE: "/srv/cache" })).toBe(`/srv/cache/gvisor/${RUNSC_VERSION}/runsc`);
  });

  test("runsc --version is parsed; Debian's build and garbage are told apart", () => {
    expect(parseRunscVersion(`runsc version ${RUNSC_VERSION}\nspec: 1.2.1\n`)).toBe(RUNSC_VERSION);
    expect(parseRunscVersion("runsc version 0.0~20221219.0\nspec: 1.0.2-dev\n")).toBe("0.0~20221219.0");
    expect(parseRunscVersion("command not found")).toBeUndefined();
  });
});
