/**
 * Configuration read from files: the tokens file (plaintext tokens and digests, the file's mode,
 * malformed entries) and the TLS certificate and key (a matching pair, a mismatched one), then a
 * server started with a tokens file that admits a digest-listed token in its environment only.
 */
import { createHash } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { VolumeService } from "@chalk/proto/volume/v1";
import { createClient } from "@chalk/rpc";
import { createTestCertificate } from "@chalk/rpc/testing";
import { afterAll, describe, expect, test } from "vitest";
import { ConfigError, parseConfig } from "../src/config.js";
import { removeDataDir, startServerProcess } from "../src/server-process.js";
import { tokenDigest } from "../src/tokens.js";

const dir = mkdtempSync(join(tmpdir(), "chalk-config-files-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(content: unknown, mode = 0o600): string {
  const path = join(dir, `f${n++}.json`);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  chmodSync(path, mode);
  return path;
}

const sha = (t: string) => createHash("sha256").update(t).digest("hex");
const config = (argv: string[]) => {
  const parsed = parseConfig(argv, {});
  if (parsed.help) throw new Error("help");
  return parsed.config;
};

describe("the tokens file", () => {
  test("lists plaintext tokens and digests with their environments", () => {
    const path = file([
      { name: "ci", sha256: sha("ci-token-0123456789abcdef"), environments: ["staging", "prod"] },
      { token: "ops-token-0123456789abcdef", environments: "*" },
    ]);
    const c = config(["--tokens-file", path]);
    expect(c.tokens.map((g) => [g.source, g.environments])).toEqual([
      ["tokens file entry 1 (ci)", ["staging", "prod"]],
      ["tokens file entry 2", "*"],
    ]);
    expect(c.tokens[0]?.sha256).toEqual(tokenDigest("ci-token-0123456789abcdef"));
    expect(c.tokens[1]?.sha256).toEqual(tokenDigest("ops-token-0123456789abcdef"));
  });

  test("plaintext tokens in a file readable by group or others are refused; digests are not secret", () => {
    const plain = file([{ token: "ops-token-0123456789abcdef", environments: "*" }], 0o644);
    expect(() => config(["--tokens-file", plain])).toThrow(
      /readable by group or others \(mode 644\); chmod 600/,
    );
    const digests = file([{ sha256: sha("x-token-0123456789abcdef"), environments: ["a"] }], 0o644);
    expect(config(["--tokens-file", digests]).tokens).toHaveLength(1);
  });

  test.each([
    ["not JSON", "{", "not JSON"],
    ["an empty list", [], "list at least one token"],
    [
      "both token and sha256",
      [{ token: "t".repeat(16), sha256: sha("x"), environments: "*" }],
      "exactly one of token and sha256",
    ],
    ["neither", [{ environments: "*" }], "exactly one of token and sha256"],
    ["no environments", [{ sha256: sha("x") }], "0.environments"],
    ["an empty environment list", [{ sha256: sha("x"), environments: [] }], 'or "*" for all'],
    ["a bad environment name", [{ sha256: sha("x"), environments: ["Prod"] }], "environment names are 1-63"],
    ["a short digest", [{ sha256: "abc", environments: "*" }], "64 lower-case hex digits"],
    ["a short token", [{ token: "short", environments: "*" }], "at least 16 characters"],
    ["an unknown key", [{ sha256: sha("x"), environments: "*", role: "admin" }], "role"],
  ])("%s is refused, naming the problem", (_what, content, named) => {
    const path = file(content);
    expect(() => config(["--tokens-file", path])).toThrow(ConfigError);
    expect(() => config(["--tokens-file", path])).toThrow(named);
  });

  test("no message about a bad entry repeats a token", () => {
    const path = file([{ token: "secret short", environments: "*" }]);
    expect(() => config(["--tokens-file", path])).toThrow(ConfigError);
    try {
      config(["--tokens-file", path]);
    } catch (err) {
      expect((err as Error).message).not.toContain("secret short");
    }
  });

  test("a token in both the file and a flag is refused as ambiguous", () => {
    const path = file([{ token: "dup-token-0123456789abcdef", environments: ["a"] }]);
    expect(() => config(["--token", "dup-token-0123456789abcdef@b", "--tokens-file", path])).toThrow(
      "tokens file entry 1: the same token as --token #1",
    );
  });
});

describe("the TLS certificate and key", () => {
  test("a matching pair is read; a key of another certificate is refused at start", () => {
    const a = createTestCertificate({ dir: join(dir, "a") });
    const b = createTestCertificate({ dir: join(dir, "b") });
    const c = config([
      "--token",
      "t0ken-that-is-long-enough@*",
      "--tls-cert",
      a.certFile,
      "--tls-key",
      a.keyFile,
    ]);
    expect(c.tls?.cert.toString()).toBe(a.cert);
    expect(() =>
      config(["--token", "t0ken-that-is-long-enough@*", "--tls-cert", a.certFile, "--tls-key", b.keyFile]),
    ).toThrow(/--tls-cert .* and --tls-key .*: not a PEM certificate chain and its private key/);
    expect(() =>
      config(["--token", "t0ken-that-is-long-enough@*", "--tls-cert", a.keyFile, "--tls-key", a.keyFile]),
    ).toThrow(ConfigError);
  });

  test("with TLS the server may listen off loopback", () => {
    const a = createTestCertificate({ dir: join(dir, "c") });
    const c = config([
      "--listen",
      "0.0.0.0:50051",
      "--token",
      "t0ken-that-is-long-enough@*",
      "--tls-cert",
      a.certFile,
      "--tls-key",
      a.keyFile,
    ]);
    expect(c.listen).toBe("0.0.0.0:50051");
  });
});

describe("a server with a tokens file", () => {
  test("admits a digest-listed token in its environments and refuses it elsewhere", async () => {
    const token = "file-listed-token-0123456789";
    const path = file([{ name: "team", sha256: sha(token), environments: ["team-a"] }]);
    const server = await startServerProcess({ args: ["--tokens-file", path] });
    try {
      const inTeam = createClient(VolumeService, server.transport("team-a", token));
      expect((await inTeam.listVolumes({})).volumes).toEqual([]);
      const elsewhere = createClient(VolumeService, server.transport("team-b", token));
      const err = await elsewhere.listVolumes({}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ChalkError);
      expect(err).toMatchObject({ code: Code.PermissionDenied, field: "environment" });
      // The fixture's own token (granted every environment on the command line) still works too.
      expect((await createClient(VolumeService, server.transport("team-b")).listVolumes({})).volumes).toEqual(
        [],
      );
    } finally {
      try {
        await server.kill();
      } finally {
        await removeDataDir(server.dataDir);
      }
    }
  });
});
