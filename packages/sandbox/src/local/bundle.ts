import { readFileSync, renameSync, writeFileSync } from "node:fs";
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

/**
 * Where the reaping init (`tini`, bind-mounted read-only from the host) appears inside a sandbox:
 * under `/dev`, a file system the sandbox makes in memory, so the mount point leaves no trace in
 * the root filesystem or the writable layer (an image builder turns that into a layer).
 */
export const INIT_PATH = "/dev/init";

/** Mount points every sandbox has, whose content is not in its root filesystem. */
export const SYSTEM_MOUNT_TARGETS: readonly string[] = ["/proc", "/dev", "/sys"];

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
  /**
   * The host's static `tini` to run the init process under (bind-mounted read-only at
   * {@link INIT_PATH}), or undefined to run it as PID 1 itself.
   */
  init: string | undefined;
  cgroupsPath: string;
  /**
   * The network namespace (`/var/run/netns/<name>`) whose interfaces the sandbox's own network
   * stack takes over (runsc `--network=sandbox`); undefined for no network (runsc then makes an
   * empty namespace with loopback only).
   */
  netns: string | undefined;
}

/**
 * Host tasks the sandbox's pids cgroup may hold: a safety net under the limit that matters,
 * `RLIMIT_NPROC` inside (`pids`), which gVisor enforces. Measured with the pinned runsc on its
 * systrap platform (README, "Processes"): each process in the sandbox costs the host 2.0 tasks (its
 * stub process's), about 30 more for the sentry and gofer; so 3 per process plus 256 never binds a
 * sandbox below its own limit, and keeps a runaway sandbox to a known share of the host's
 * `pid_max`. (The ptrace platform of the 2022 runsc cost about ten per process.)
 */
export function hostPidsLimit(pids: number): number {
  return 256 + pids * 3;
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
      // Under the init, as `docker run --init`: it reaps orphans and forwards signals.
      args: s.init === undefined ? s.args : [INIT_PATH, "--", ...s.args],
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
      // No tmpfs on /tmp: it is the image's own directory, in the writable layer on disk (and
      // under its disk limit), as in Docker, not memory charged to the sandbox's limit.
      ...(s.init === undefined
        ? []
        : [{ destination: INIT_PATH, type: "bind", source: s.init, options: ["rbind", "ro"] }]),
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
export function writeBundle(bundleDir: string, s: BundleSpec): void {
  writeFileSync(join(bundleDir, "config.json"), JSON.stringify(bundleConfig(s), null, 1), { mode: 0o600 });
}

/**
 * Removes the environment from a started sandbox's `config.json`. runsc reads the bundle once, at
 * `runsc run`, and keeps the config in its own state file (which execs read their defaults from), so
 * the bundle's copy of the environment, secrets included, is not needed once the sandbox runs.
 */
export function scrubBundleEnv(bundleDir: string): void {
  const file = join(bundleDir, "config.json");
  const config = JSON.parse(readFileSync(file, "utf8")) as { process?: { env?: string[] } };
  if (config.process) config.process.env = [];
  writeFileSync(`${file}.tmp`, JSON.stringify(config, null, 1), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}
