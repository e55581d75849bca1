import { writeFile } from "node:fs/promises";
import { join } from "node:path";

/** The usual container default capabilities: enough for apt-get and package builds. */
export const DEFAULT_CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_RAW",
  "CAP_SYS_CHROOT",
  "CAP_MKNOD",
  "CAP_AUDIT_WRITE",
  "CAP_SETFCAP",
];

/** Default limit on processes inside a sandbox when none is given. */
export const DEFAULT_PIDS = 1024;

/** What goes into one sandbox's OCI config. */
export interface BundleSpec {
  id: string;
  rootfs: string;
  args: string[];
  env: Record<string, string>;
  workdir: string;
  cpuMillis: number | undefined;
  memoryBytes: number | undefined;
  pids: number;
  mounts: { source: string; target: string; readOnly: boolean }[];
  cgroupsPath: string;
  /**
   * The network namespace (`/var/run/netns/<name>`) whose interfaces the sandbox's own network
   * stack takes over (runsc `--network=sandbox`); undefined for no network (runsc then makes an
   * empty namespace with loopback only).
   */
  netns: string | undefined;
}

/**
 * Host tasks the sandbox's cgroup may hold. With the ptrace platform every sandbox process costs
 * the sentry several host threads (about ten were measured per process), so the host limit is only
 * a safety net; the limit on processes inside is RLIMIT_NPROC, which gVisor enforces.
 */
export function hostPidsLimit(pids: number): number {
  return Math.max(1024, 256 + pids * 16);
}

/** The OCI runtime config (`config.json`) of a sandbox. */
export function bundleConfig(s: BundleSpec): Record<string, unknown> {
  const resources: Record<string, unknown> = { pids: { limit: hostPidsLimit(s.pids) } };
  if (s.memoryBytes !== undefined) resources.memory = { limit: s.memoryBytes };
  if (s.cpuMillis !== undefined) resources.cpu = { quota: s.cpuMillis * 100, period: 100_000 };
  const env = {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: "/root",
    ...s.env,
  };
  const config = {
    ociVersion: "1.0.0",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: s.args,
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      cwd: s.workdir,
      capabilities: {
        bounding: DEFAULT_CAPABILITIES,
        effective: DEFAULT_CAPABILITIES,
        inheritable: DEFAULT_CAPABILITIES,
        permitted: DEFAULT_CAPABILITIES,
      },
      rlimits: [
        { type: "RLIMIT_NOFILE", hard: 1_048_576, soft: 1_048_576 },
        { type: "RLIMIT_NPROC", hard: s.pids, soft: s.pids },
      ],
      noNewPrivileges: true,
    },
    root: { path: s.rootfs, readonly: false },
    hostname: s.id.slice(0, 63),
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"] },
      ...s.mounts.map((m) => ({
        destination: m.target,
        type: "bind",
        source: m.source,
        options: ["rbind", m.readOnly ? "ro" : "rw"],
      })),
    ],
    linux: {
      cgroupsPath: s.cgroupsPath,
      resources,
      // A networked sandbox joins the namespace made for it (its veth end, address and route),
      // which gVisor's netstack scrapes and takes over; the others get a new, empty one.
      namespaces: [
        { type: "pid" },
        { type: "ipc" },
        { type: "uts" },
        { type: "mount" },
        ...(s.netns ? [{ type: "network", path: s.netns }] : []),
      ],
    },
  };
  return config;
}

/** Writes `config.json` for the sandbox into `bundleDir`, readable by root only (its env may hold secrets). */
export async function writeBundle(bundleDir: string, s: BundleSpec): Promise<void> {
  await writeFile(join(bundleDir, "config.json"), JSON.stringify(bundleConfig(s), null, 1), { mode: 0o600 });
}
