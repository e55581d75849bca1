import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { inspectSandboxPath } from "./sandbox-path.js";

// A root filesystem on the host as a sandbox sees it; the host's own /etc is outside it.
const root = mkdtempSync(join(tmpdir(), "chalk-sandbox-path-"));
mkdirSync(join(root, "etc"));
writeFileSync(join(root, "etc", "hostname"), "sandbox\n");
mkdirSync(join(root, "real", "deep"), { recursive: true });
symlinkSync("/real", join(root, "abs-link"));
symlinkSync("../../../../../../real", join(root, "climbing-link"));
symlinkSync("/etc/passwd", join(root, "host-file")); // names the sandbox's /etc/passwd: missing
symlinkSync("/etc", join(root, "etc-link"));
symlinkSync("loop-b", join(root, "loop-a"));
symlinkSync("loop-a", join(root, "loop-b"));

afterAll(() => rmSync(root, { recursive: true, force: true }));

const kind = (path: string, mounts: string[] = []) => inspectSandboxPath(root, path, mounts);

describe("a path inside a sandbox, resolved on the host without leaving its root", () => {
  test("directories, files and missing paths", () => {
    expect(kind("/")).toBe("directory");
    expect(kind("/real/deep")).toBe("directory");
    expect(kind("/etc/hostname")).toBe("not-directory");
    expect(kind("/etc/hostname/x")).toBe("not-directory");
    expect(kind("/no/such/dir")).toBe("missing");
  });

  test("symlinks resolve inside the root: absolute ones from the root, .. stops at it", () => {
    expect(kind("/abs-link/deep")).toBe("directory");
    expect(kind("/climbing-link")).toBe("directory");
    expect(kind("/../../..")).toBe("directory");
    // The host has /etc/passwd; the sandbox does not.
    expect(kind("/host-file")).toBe("missing");
    expect(kind("/etc-link/hostname")).toBe("not-directory");
  });

  test("a symlink loop and paths under mounts are left to the sandbox (unknown)", () => {
    expect(kind("/loop-a")).toBe("unknown");
    expect(kind("/proc/self", ["/proc"])).toBe("unknown");
    expect(kind("/data/x", ["/data"])).toBe("unknown");
    expect(kind("/abs-link", ["/real"])).toBe("unknown");
  });
});
