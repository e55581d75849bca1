import { describe, expect, test } from "vitest";
import { ConfigError, environmentDefaults, isLoopback, parseConfig } from "./config.js";
import { tokenDigest } from "./tokens.js";

const token = "t0ken-that-is-long-enough";
const grant = `${token}@*`;
const config = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  const parsed = parseConfig(argv, env);
  if (parsed.help) throw new Error("help");
  return parsed.config;
};

describe("server configuration", () => {
  test("defaults apply when only a token is given", () => {
    const c = config(["--token", grant]);
    expect(c.tls).toBeUndefined();
    expect(c.listen).toBe("127.0.0.1:50051");
    expect(c.dataDir).toBe("/var/lib/chalk");
    expect(c.backend).toBe("local");
    expect(c.defaults).toEqual({ cpu: "1", memory: "1Gi" });
    expect(c.metricsListen).toBeUndefined();
    expect(c.maxUnaryReadsPerConnection).toBe(4);
    expect(
      config(["--token", grant, "--max-unary-reads-per-connection", "16"]).maxUnaryReadsPerConnection,
    ).toBe(16);
  });

  test("--token TOKEN@ENVS grants environments; CHALK_TOKEN with CHALK_TOKEN_ENVIRONMENTS adds a token", () => {
    const c = config(["--token", `${token}@team-a,team-b`, "--token", `${token}-x@*`], {
      CHALK_TOKEN: `${token}-2`,
      CHALK_TOKEN_ENVIRONMENTS: "default",
    });
    expect(c.tokens.map((g) => [g.source, g.environments])).toEqual([
      ["--token #1", ["team-a", "team-b"]],
      ["--token #2", "*"],
      ["CHALK_TOKEN", ["default"]],
    ]);
    expect(c.tokens[0]?.sha256).toEqual(tokenDigest(token));
  });

  test("exec slot bounds derive from --max-concurrent-execs unless given; bad counts name the flag", () => {
    expect(config(["--token", grant]).execSlots).toEqual({
      total: 32,
      perContainer: 16,
      perEnvironment: 24,
      longPerContainer: 4,
      longPerEnvironment: 8,
      queued: 2048,
      queuedPerEnvironment: 1536,
      queuedStdinBytes: 64 * 1024 * 1024,
    });
    const c = config(["--token", grant, "--max-concurrent-execs", "8", "--max-execs-per-container", "3"]);
    expect(c.execSlots).toMatchObject({ total: 8, perContainer: 3, perEnvironment: 6, queued: 512 });
    expect(() => config(["--token", grant, "--max-long-execs-per-environment", "0"])).toThrow(
      /--max-long-execs-per-environment/,
    );
  });

  test("--allow-registry and CHALK_ALLOW_REGISTRIES list registries; a URL is refused naming the flag", () => {
    const c = config(["--token", grant, "--allow-registry", "mirror.example.com:5000"], {
      CHALK_ALLOW_REGISTRIES: "a.example,b.example:443",
    });
    expect(c.allowedRegistries).toEqual(["mirror.example.com:5000", "a.example", "b.example:443"]);
    expect(() => config(["--token", grant, "--allow-registry", "https://x.example/"])).toThrow(
      /--allow-registry/,
    );
  });

  test("finished containers' logs: 100 per environment for 7 days by default", () => {
    const c = config(["--token", grant]);
    expect([c.finishedLogRetention, c.finishedLogMaxAgeSecs]).toEqual([100, 7 * 86_400]);
    expect(() => config(["--token", grant, "--finished-log-retention", "-1"])).toThrow(
      /--finished-log-retention/,
    );
  });

  test("only digests of the tokens are kept in the configuration", () => {
    const c = config(["--token", grant]);
    expect(JSON.stringify(c)).not.toContain(token);
  });

  test("a token with @ inside it is split at the last @", () => {
    expect(config(["--token", `${token}@with-at@prod`]).tokens[0]).toMatchObject({
      sha256: tokenDigest(`${token}@with-at`),
      environments: ["prod"],
    });
  });

  test("disk limits and build step limits: defaults, flags, environment and none", () => {
    const d = config(["--token", grant]);
    expect(d.defaultDisk).toBe("10Gi");
    expect(d.volumeQuotaBytes).toBe(10 * 2 ** 30);
    expect(d.build).toEqual({ memory: "4Gi", cpu: "2", pids: 1024 });
    const c = config(
      ["--token", grant, "--default-disk", "none", "--build-memory", "2Gi", "--build-pids", "512"],
      { CHALK_VOLUME_QUOTA: "none", CHALK_BUILD_CPU: "500m" },
    );
    expect(c.defaultDisk).toBeUndefined();
    expect(c.volumeQuotaBytes).toBeUndefined();
    expect(c.build).toEqual({ memory: "2Gi", cpu: "500m", pids: 512 });
  });

  test("flags override environment variables", () => {
    const c = config(["--listen", "127.0.0.1:7000", "--token", grant], { CHALK_LISTEN: "127.0.0.1:8000" });
    expect(c.listen).toBe("127.0.0.1:7000");
    expect(config(["--token", grant], { CHALK_LISTEN: "127.0.0.1:8000" }).listen).toBe("127.0.0.1:8000");
  });

  test("runsc comes from --runsc over CHALK_RUNSC, else the runtime's pinned default", () => {
    expect(config(["--token", grant]).runsc).toBeUndefined();
    expect(config(["--token", grant], { CHALK_RUNSC: "/opt/gvisor/runsc" }).runsc).toBe("/opt/gvisor/runsc");
    expect(
      config(["--runsc", "/srv/runsc", "--token", grant], { CHALK_RUNSC: "/opt/gvisor/runsc" }).runsc,
    ).toBe("/srv/runsc");
    expect(() => config(["--runsc", "runsc", "--token", grant])).toThrow(
      /--runsc: expected an absolute path/,
    );
  });

  test("pnpm's leading -- is ignored", () => {
    expect(config(["--", "--token", grant]).tokens).toHaveLength(1);
  });

  test.each([
    [["--listen", "nope", "--token", grant], "--listen"],
    [["--listen", "127.0.0.1:99999", "--token", grant], "--listen"],
    [["--default-cpu", "lots", "--token", grant], "--default-cpu"],
    [["--default-memory", "12XB", "--token", grant], "--default-memory"],
    [["--registry", "no port", "--token", grant], "--registry"],
    [["--token", "short@*"], "--token #1: tokens must be at least 16 characters"],
    [["--token", token], "--token #1: say which environments the token may act in: --token TOKEN@env1,env2"],
    [["--token", `${token}@`], "--token #1"],
    [["--token", `${token}@Prod`], "is not an environment list"],
    [["--token", `${token}@a,,b`], "is not an environment list"],
    [["--token", grant, "--token", `${token}@prod`], "--token #2: the same token as --token #1"],
    [["--log-level", "loud", "--token", grant], "--log-level"],
    [["--max-unary-reads-per-connection", "0", "--token", grant], "--max-unary-reads-per-connection"],
    [["--backend", "kubernetes", "--token", grant], "--kubeconfig: --backend kubernetes needs"],
    [
      ["--backend", "kubernetes", "--kubeconfig", "/nonexistent", "--token", grant],
      "--kubeconfig: cannot read",
    ],
    [
      ["--backend", "kubernetes", "--kubeconfig", "/dev/null", "--token", grant],
      "--registry: --backend kubernetes needs",
    ],
    [
      [
        "--backend",
        "kubernetes",
        "--kubeconfig",
        "/dev/null",
        "--registry",
        "r:5000",
        "--rootfs-image",
        "m=/srv",
        "--token",
        grant,
      ],
      "--rootfs-image: not available with --backend kubernetes",
    ],
    [
      [
        "--backend",
        "kubernetes",
        "--kubeconfig",
        "/dev/null",
        "--registry",
        "r:5000",
        "--runtime-class",
        "Bad_Name",
        "--token",
        grant,
      ],
      "--runtime-class",
    ],
    [["--backend", "nomad", "--token", grant], "--backend"],
    [["--unknown-flag"], "unknown-flag"],
    [["--default-disk", "huge", "--token", grant], "--default-disk"],
    [["--default-disk", "1Mi", "--token", grant], "--default-disk"],
    [["--volume-quota", " 1Gi", "--token", grant], "--volume-quota"],
    [["--build-memory", "lots", "--token", grant], "--build-memory"],
    [["--build-cpu", "all", "--token", grant], "--build-cpu"],
    [["--build-pids", "3", "--token", grant], "--build-pids"],
    [[], "no auth token"],
    [["--insecure-no-auth", "--listen", "0.0.0.0:50051"], "not a loopback address"],
    [["--listen", "0.0.0.0:50051", "--token", grant], "give --tls-cert FILE and --tls-key FILE"],
    [["--listen", "[::]:50051", "--token", grant], "not a loopback address, so the server needs TLS"],
    [["--tls-cert", "/x.pem", "--token", grant], "--tls-cert and --tls-key: give both"],
    [
      ["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key", "--token", grant],
      "--tls-cert: cannot read",
    ],
  ])("a bad configuration %j is refused naming %s", (argv, named) => {
    expect(() => parseConfig(argv, {})).toThrow(ConfigError);
    expect(() => parseConfig(argv, {})).toThrow(named);
  });

  test("CHALK_TOKEN without CHALK_TOKEN_ENVIRONMENTS is refused, naming both", () => {
    expect(() => parseConfig([], { CHALK_TOKEN: token })).toThrow(
      "CHALK_TOKEN: set CHALK_TOKEN_ENVIRONMENTS to the environments it may act in",
    );
    expect(() => parseConfig([], { CHALK_TOKEN: token, CHALK_TOKEN_ENVIRONMENTS: "*" })).not.toThrow();
  });

  test("no message about a bad token repeats the token", () => {
    for (const argv of [
      ["--token", "sh0rt-secret@*"],
      ["--token", `${token}`],
      ["--token", `${token} x@*`],
    ]) {
      expect(() => parseConfig(argv, {})).toThrow(ConfigError);
      try {
        parseConfig(argv, {});
      } catch (err) {
        expect((err as Error).message).not.toContain(argv[1]?.split("@")[0]);
      }
    }
  });

  test("--insecure-no-auth is accepted on loopback", () => {
    expect(config(["--insecure-no-auth", "--listen", "127.0.0.1:0"]).insecureNoAuth).toBe(true);
    expect(config(["--insecure-no-auth", "--listen", "[::1]:0"]).insecureNoAuth).toBe(true);
  });

  test("loopback detection", () => {
    expect(isLoopback("127.0.0.2:1")).toBe(true);
    expect(isLoopback("localhost:1")).toBe(true);
    expect(isLoopback("10.0.0.1:1")).toBe(false);
    expect(isLoopback("0.0.0.0:1")).toBe(false);
  });

  test("an environment without its own entry takes the defaults", () => {
    const c = { ...config(["--token", grant]), environments: { prod: { memory: "4Gi" } } };
    expect(environmentDefaults(c, "prod")).toEqual({ cpu: "1", memory: "4Gi" });
    expect(environmentDefaults(c, "dev")).toEqual({ cpu: "1", memory: "1Gi" });
  });

  test("an operator image's name must be an image reference, since containers name it as one", () => {
    expect(config(["--token", grant, "--rootfs-image", "minbase=/srv/rootfs"]).rootfsImages).toEqual({
      minbase: "/srv/rootfs",
    });
    expect(() => config(["--token", grant, "--rootfs-image", "a:b:c=/srv/rootfs"])).toThrow(ConfigError);
    expect(() => config(["--token", grant, "--rootfs-image", "a:b:c=/srv/rootfs"])).toThrow(
      /--rootfs-image a:b:c/,
    );
  });
});
