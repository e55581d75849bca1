import { describe, expect, test } from "vitest";
import { bundleConfig, DEFAULT_CAPABILITIES, INIT_PATH } from "./bundle.js";

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
  init: undefined as string | undefined,
  netns: undefined,
};

describe("a sandbox's OCI config", () => {
  const config = bundleConfig(spec) as {
    process: {
      args: string[];
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

describe("the init and /tmp", () => {
  const mounts = (c: Record<string, unknown>) =>
    c.mounts as { destination: string; source: string; options?: string[] }[];
  const args = (c: Record<string, unknown>) => (c.process as { args: string[] }).args;

  test("with an init, the command runs under it, mounted read-only where the rootfs never sees it", () => {
    const c = bundleConfig({ ...spec, init: "/usr/bin/tini-static" });
    expect(args(c)).toEqual([INIT_PATH, "--", "sleep", "infinity"]);
    expect(INIT_PATH.startsWith("/dev/")).toBe(true);
    const init = mounts(c).find((m) => m.destination === INIT_PATH);
    expect(init).toMatchObject({ source: "/usr/bin/tini-static", options: ["rbind", "ro"] });
    // /dev is the sandbox's own in-memory file system, mounted before the init.
    expect(mounts(c).findIndex((m) => m.destination === "/dev")).toBeLessThan(mounts(c).indexOf(init!));
  });

  test("without one, the command is PID 1 itself and nothing is mounted for it", () => {
    const c = bundleConfig(spec);
    expect(args(c)).toEqual(["sleep", "infinity"]);
    expect(mounts(c).some((m) => m.destination === INIT_PATH)).toBe(false);
  });

  test("/tmp is no memory file system: it is the root filesystem's own directory", () => {
    expect(mounts(bundleConfig(spec)).some((m) => m.destination === "/tmp")).toBe(false);
  });
});
