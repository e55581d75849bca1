import { describe, expect, test } from "vitest";
import { bundleConfig, DEFAULT_CAPABILITIES } from "./bundle.js";

const spec = {
  id: "sb-1",
  rootfs: "/state/sb-1/rootfs",
  args: ["sleep", "infinity"],
  env: { FOO: "bar" },
  workdir: "/work",
  cpuMillis: 500,
  memoryBytes: 256 * 2 ** 20,
  pids: 64,
  mounts: [{ source: "/data", target: "/mnt/data", readOnly: true }],
  cgroupsPath: "/chalk/sb-1/sandbox",
  netns: undefined,
};

describe("a sandbox's OCI config", () => {
  const config = bundleConfig(spec) as {
    process: {
      capabilities: Record<string, string[]>;
      rlimits: { type: string; hard: number }[];
      env: string[];
    };
    linux: { resources: { memory: { limit: number }; cpu: { quota: number; period: number } } };
    mounts: { destination: string; options?: string[] }[];
  };

  test("processes get the usual container capabilities, enough for apt-get", () => {
    for (const set of ["bounding", "effective", "permitted"]) {
      expect(config.process.capabilities[set]).toEqual(DEFAULT_CAPABILITIES);
    }
    expect(DEFAULT_CAPABILITIES).toEqual(expect.arrayContaining(["CAP_SETUID", "CAP_SETGID", "CAP_CHOWN"]));
  });

  test("limits: cpu as quota per 100 ms period, memory in bytes, processes as RLIMIT_NPROC", () => {
    expect(config.linux.resources.cpu).toEqual({ quota: 50_000, period: 100_000 });
    expect(config.linux.resources.memory.limit).toBe(256 * 2 ** 20);
    expect(config.process.rlimits).toContainEqual(
      expect.objectContaining({ type: "RLIMIT_NPROC", hard: 64 }),
    );
  });

  test("environment over the defaults, and read-only mounts stay read-only", () => {
    expect(config.process.env).toContain("FOO=bar");
    expect(config.process.env.some((e) => e.startsWith("PATH="))).toBe(true);
    expect(config.mounts.find((m) => m.destination === "/mnt/data")?.options).toContain("ro");
  });

  test("a networked sandbox joins the namespace made for it; one without network names none", () => {
    const namespaces = (c: Record<string, unknown>) =>
      (c.linux as { namespaces: { type: string; path?: string }[] }).namespaces;
    expect(namespaces(bundleConfig(spec)).map((n) => n.type)).not.toContain("network");
    const networked = namespaces(bundleConfig({ ...spec, netns: "/var/run/netns/chalk-ab12" }));
    expect(networked).toContainEqual({ type: "network", path: "/var/run/netns/chalk-ab12" });
  });
});
