import { describe, expect, test } from "vitest";
import { ConfigError, environmentDefaults, isLoopback, parseConfig } from "./config.js";

const token = "t0ken-that-is-long-enough";
const config = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  const parsed = parseConfig(argv, env);
  if (parsed.help) throw new Error("help");
  return parsed.config;
};

describe("server configuration", () => {
  test("defaults apply when only a token is given", () => {
    const c = config(["--token", token]);
    expect(c.listen).toBe("127.0.0.1:50051");
    expect(c.dataDir).toBe("/var/lib/chalk");
    expect(c.backend).toBe("local");
    expect(c.defaults).toEqual({ cpu: "1", memory: "1Gi" });
    expect(c.metricsListen).toBeUndefined();
  });

  test("disk limits and build step limits: defaults, flags, environment and none", () => {
    const d = config(["--token", token]);
    expect(d.defaultDisk).toBe("10Gi");
    expect(d.volumeQuotaBytes).toBe(10 * 2 ** 30);
    expect(d.build).toEqual({ memory: "4Gi", cpu: "2", pids: 1024 });
    const c = config(
      ["--token", token, "--default-disk", "none", "--build-memory", "2Gi", "--build-pids", "512"],
      { CHALK_VOLUME_QUOTA: "none", CHALK_BUILD_CPU: "500m" },
    );
    expect(c.defaultDisk).toBeUndefined();
    expect(c.volumeQuotaBytes).toBeUndefined();
    expect(c.build).toEqual({ memory: "2Gi", cpu: "500m", pids: 512 });
  });

  test("CHALK_TOKEN in the environment sets a token, --token adds more", () => {
    expect(config(["--token", token], { CHALK_TOKEN: `${token}-2` }).tokens).toEqual([token, `${token}-2`]);
  });

  test("flags override environment variables", () => {
    const c = config(["--listen", "127.0.0.1:7000", "--token", token], { CHALK_LISTEN: "127.0.0.1:8000" });
    expect(c.listen).toBe("127.0.0.1:7000");
    expect(config(["--token", token], { CHALK_LISTEN: "127.0.0.1:8000" }).listen).toBe("127.0.0.1:8000");
  });

  test("runsc comes from --runsc over CHALK_RUNSC, else the runtime's pinned default", () => {
    expect(config(["--token", token]).runsc).toBeUndefined();
    expect(config(["--token", token], { CHALK_RUNSC: "/opt/gvisor/runsc" }).runsc).toBe("/opt/gvisor/runsc");
    expect(
      config(["--runsc", "/srv/runsc", "--token", token], { CHALK_RUNSC: "/opt/gvisor/runsc" }).runsc,
    ).toBe("/srv/runsc");
    expect(() => config(["--runsc", "runsc", "--token", token])).toThrow(
      /--runsc: expected an absolute path/,
    );
  });

  test("pnpm's leading -- is ignored", () => {
    expect(config(["--", "--token", token]).tokens).toEqual([token]);
  });

  test.each([
    [["--listen", "nope", "--token", token], "--listen"],
    [["--listen", "127.0.0.1:99999", "--token", token], "--listen"],
    [["--default-cpu", "lots", "--token", token], "--default-cpu"],
    [["--default-memory", "12XB", "--token", token], "--default-memory"],
    [["--registry", "no port", "--token", token], "--registry"],
    [["--token", "short"], "--token"],
    [["--log-level", "loud", "--token", token], "--log-level"],
    [["--backend", "kubernetes", "--token", token], "not implemented"],
    [["--backend", "nomad", "--token", token], "--backend"],
    [["--unknown-flag"], "unknown-flag"],
    [["--default-disk", "huge", "--token", token], "--default-disk"],
    [["--default-disk", "1Mi", "--token", token], "--default-disk"],
    [["--volume-quota", " 1Gi", "--token", token], "--volume-quota"],
    [["--build-memory", "lots", "--token", token], "--build-memory"],
    [["--build-cpu", "all", "--token", token], "--build-cpu"],
    [["--build-pids", "3", "--token", token], "--build-pids"],
    [[], "no auth token"],
    [["--insecure-no-auth", "--listen", "0.0.0.0:50051"], "not a loopback address"],
  ])("a bad configuration %j is refused naming %s", (argv, named) => {
    expect(() => parseConfig(argv, {})).toThrow(ConfigError);
    expect(() => parseConfig(argv, {})).toThrow(named);
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
    const c = { ...config(["--token", token]), environments: { prod: { memory: "4Gi" } } };
    expect(environmentDefaults(c, "prod")).toEqual({ cpu: "1", memory: "4Gi" });
    expect(environmentDefaults(c, "dev")).toEqual({ cpu: "1", memory: "1Gi" });
  });
});
