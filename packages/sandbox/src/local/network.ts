import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { childEnv } from "./child-env.js";

/**
 * The private subnet sandboxes live in. No host route covers it here (the host has 192.0.2.0/24);
 * each sandbox gets one /30 of it: the host end of its veth pair and the sandbox's address.
 */
export const SANDBOX_SUBNET = "10.213.0.0/16";
const SLOTS = 16_384;

/**
 * Machine-wide network state (any runtime, any state dir, any process): one directory per taken
 * /30, the lock that orders changes to it and to the iptables chains, and the forwarding setting
 * found before the first sandbox network.
 */
const NET_DIR = "/run/chalk-net";
const LOCK_FILE = join(NET_DIR, "lock");
const FORWARD_ORIG = join(NET_DIR, "ip_forward.orig");

/**
 * The chains that hold every sandbox's rules; the built-in chains only jump to them. `ip6tables`
 * has its own filter chains of the same names, which drop all IPv6 from and to sandboxes.
 */
const CHAINS = [
  { family: 4, table: "filter", chain: "CHALK-FWD", from: "FORWARD" },
  { family: 4, table: "filter", chain: "CHALK-IN", from: "INPUT" },
  { family: 4, table: "nat", chain: "CHALK-POST", from: "POSTROUTING" },
  { family: 6, table: "filter", chain: "CHALK-FWD", from: "FORWARD" },
  { family: 6, table: "filter", chain: "CHALK-IN", from: "INPUT" },
] as const;

/** A rule of one sandbox: its family (iptables or ip6tables), table, chain and match. */
export interface SandboxRule {
  family: 4 | 6;
  table: string;
  chain: string;
  spec: string[];
}

/** One sandbox's network: its namespace, veth pair and addresses. */
export interface SandboxNetwork {
  /** Name of the network namespace (`/var/run/netns/<name>`). */
  netns: string;
  /** Host end of the veth pair. */
  hostIf: string;
  /** Sandbox end of the veth pair before it moves into the namespace (renamed `eth0` there). */
  peerIf: string;
  /** Address of the host end (the sandbox's gateway). */
  gateway: string;
  /** The sandbox's address, reachable from the host. */
  address: string;
  /** The /30 slot this network holds. */
  slot: number;
}

/** The path of a sandbox network's namespace, as the sandbox's OCI config names it. */
export function netnsPath(n: SandboxNetwork): string {
  return `/var/run/netns/${n.netns}`;
}

function sh(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { env: childEnv() }, (err, stdout, stderr) =>
      err
        ? reject(
            new ChalkError(Code.Internal, `${cmd} ${args.join(" ")}: ${stderr.trim() || err.message}`, {
              cause: err,
            }),
          )
        : resolve(stdout),
    ),
  );
}

/** `iptables` (family 4) or `ip6tables` (family 6), waiting for the xtables lock. */
const xtables = (family: 4 | 6, table: string, ...args: string[]) =>
  sh(family === 4 ? "iptables" : "ip6tables", ["-w", "-t", table, ...args]);

/**
 * Runs `fn` holding the machine-wide network lock (`flock(1)` on {@link LOCK_FILE}, held by a
 * child process, so a crash of this process releases it).
 */
async function withNetworkLock<T>(fn: () => Promise<T>): Promise<T> {
  await mkdir(NET_DIR, { recursive: true });
  const holder = spawn("flock", [LOCK_FILE, "sh", "-c", "echo locked; read _"], {
    stdio: ["pipe", "pipe", "ignore"],
    env: childEnv(),
  });
  const exited = once(holder, "exit");
  const [locked] = await Promise.race([once(holder.stdout, "data"), exited]);
  if (!Buffer.isBuffer(locked)) {
    throw new ChalkError(Code.Unavailable, "could not take the sandbox network lock (flock)");
  }
  try {
    return await fn();
  } finally {
    holder.stdin.end();
    await exited;
  }
}

function slotAddresses(slot: number): { gateway: string; address: string } {
  const base = slot * 4;
  const third = Math.floor(base / 256);
  const fourth = base % 256;
  return { gateway: `10.213.${third}.${fourth + 1}`, address: `10.213.${third}.${fourth + 2}` };
}

/**
 * The iptables and ip6tables rules of one sandbox, in order, each tagged with a comment naming it.
 * IPv6 is off on both ends of the sandbox's veth pair ({@link setupNetwork}); the ip6tables rules
 * drop whatever IPv6 would still pass (defence in depth): nothing from the sandbox to the host or
 * through it, nothing to the sandbox.
 */
export function sandboxRules(n: SandboxNetwork, sandboxId: string): SandboxRule[] {
  const tag = ["-m", "comment", "--comment", `chalk:${sandboxId}`];
  const established = ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED"];
  const v4 = (r: Omit<SandboxRule, "family">): SandboxRule => ({ family: 4, ...r });
  return [...ipv4Rules(n, tag, established).map(v4), ...ipv6Rules(n, tag)];
}

function ipv6Rules(n: SandboxNetwork, tag: string[]): SandboxRule[] {
  return [
    { family: 6, table: "filter", chain: "CHALK-IN", spec: ["-i", n.hostIf, ...tag, "-j", "DROP"] },
    { family: 6, table: "filter", chain: "CHALK-FWD", spec: ["-i", n.hostIf, ...tag, "-j", "DROP"] },
    { family: 6, table: "filter", chain: "CHALK-FWD", spec: ["-o", n.hostIf, ...tag, "-j", "DROP"] },
  ];
}

function ipv4Rules(n: SandboxNetwork, tag: string[], established: string[]): Omit<SandboxRule, "family">[] {
  return [
    // Never to another sandbox.
    {
      table: "filter",
      chain: "CHALK-FWD",
      spec: ["-i", n.hostIf, "-d", SANDBOX_SUBNET, ...tag, "-j", "DROP"],
    },
    // Out to the world, and the replies back.
    { table: "filter", chain: "CHALK-FWD", spec: ["-i", n.hostIf, ...tag, "-j", "ACCEPT"] },
    { table: "filter", chain: "CHALK-FWD", spec: ["-o", n.hostIf, ...established, ...tag, "-j", "ACCEPT"] },
    // Nothing routed through this host opens a connection to the sandbox (the host itself may).
    { table: "filter", chain: "CHALK-FWD", spec: ["-o", n.hostIf, ...tag, "-j", "DROP"] },
    // Replies to the host's own connections pass; connections to the host's services do not.
    { table: "filter", chain: "CHALK-IN", spec: ["-i", n.hostIf, ...established, ...tag, "-j", "ACCEPT"] },
    { table: "filter", chain: "CHALK-IN", spec: ["-i", n.hostIf, ...tag, "-j", "DROP"] },
    // Outbound traffic leaves with the host's address.
    {
      table: "nat",
      chain: "CHALK-POST",
      spec: ["-s", `${n.address}/32`, "!", "-d", SANDBOX_SUBNET, ...tag, "-j", "MASQUERADE"],
    },
  ];
}

/** Creates the chains and the jumps to them if missing (under the lock, so exactly once). */
async function ensureChains(): Promise<void> {
  for (const c of CHAINS) {
    await xtables(c.family, c.table, "-N", c.chain).catch(() => undefined);
    const present = await xtables(c.family, c.table, "-C", c.from, "-j", c.chain).then(
      () => true,
      () => false,
    );
    if (!present) await xtables(c.family, c.table, "-I", c.from, "1", "-j", c.chain);
  }
}

/** Removes the jumps and the chains (under the lock, once no sandbox network is left). */
async function removeChains(): Promise<void> {
  for (const c of CHAINS) {
    while (
      await xtables(c.family, c.table, "-D", c.from, "-j", c.chain).then(
        () => true,
        () => false,
      )
    ) {}
    await xtables(c.family, c.table, "-F", c.chain).catch(() => undefined);
    await xtables(c.family, c.table, "-X", c.chain).catch(() => undefined);
  }
}

/** Turns IPv6 off for a device, by its path under `/proc/sys/net/ipv6/conf` (see {@link setupNetwork}). */
function ipv6Off(netns: string | undefined, device: string): Promise<string> {
  const key = `net.ipv6.conf.${device}.disable_ipv6=1`;
  return netns === undefined
    ? sh("sysctl", ["-q", "-w", key])
    : sh("ip", ["netns", "exec", netns, "sysctl", "-q", "-w", key]);
}

async function takenSlots(): Promise<number> {
  return (await readdir(NET_DIR).catch(() => [] as string[])).filter((e) => /^\d+$/.test(e)).length;
}

/**
 * Reserves a /30 and names the namespace and links for a sandbox's network (`key`: a short unique
 * string). Nothing exists on the host yet but the reservation; {@link setupNetwork} makes the rest.
 */
export async function reserveNetwork(key: string, sandboxId: string): Promise<SandboxNetwork> {
  await mkdir(NET_DIR, { recursive: true });
  const start = Math.floor(Math.random() * SLOTS);
  for (let i = 0; i < SLOTS; i++) {
    const slot = (start + i) % SLOTS;
    try {
      await mkdir(join(NET_DIR, String(slot)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw ChalkError.from(err);
    }
    await writeFile(join(NET_DIR, String(slot), "owner"), sandboxId);
    return {
      netns: `chalk-${key}`,
      hostIf: `chk${key}`,
      peerIf: `chk${key}p`,
      slot,
      ...slotAddresses(slot),
    };
  }
  throw new ChalkError(Code.ResourceExhausted, `no free address left in ${SANDBOX_SUBNET}`);
}

/**
 * Makes a reserved network real: a namespace with a veth pair into it, the sandbox's address and
 * default route, forwarding, NAT for outbound traffic, and the rules that keep the sandbox from
 * other sandboxes and from the host's services. IPv6 is off on both ends of the veth pair before
 * either is up, so neither ever has an IPv6 address (not even link-local) and the host drops any
 * IPv6 packet that arrives on its end; ip6tables rules drop it too. {@link teardownNetwork} undoes
 * it, also halfway.
 */
export async function setupNetwork(n: SandboxNetwork, sandboxId: string): Promise<void> {
  await sh("ip", ["netns", "add", n.netns]);
  await sh("ip", ["link", "add", n.hostIf, "type", "veth", "peer", "name", n.peerIf]);
  await ipv6Off(undefined, n.hostIf);
  await sh("ip", ["link", "set", n.peerIf, "netns", n.netns]);
  await sh("ip", ["-n", n.netns, "link", "set", n.peerIf, "name", "eth0"]);
  // Before it is up, so it never gets a link-local address. Loopback keeps ::1: programs in the
  // sandbox that listen on [::] still work.
  await ipv6Off(n.netns, "eth0");
  await sh("ip", ["-n", n.netns, "addr", "add", `${n.address}/30`, "dev", "eth0"]);
  await sh("ip", ["-n", n.netns, "link", "set", "eth0", "up"]);
  await sh("ip", ["-n", n.netns, "link", "set", "lo", "up"]);
  await sh("ip", ["addr", "add", `${n.gateway}/30`, "dev", n.hostIf]);
  await sh("ip", ["link", "set", n.hostIf, "up"]);
  await sh("ip", ["-n", n.netns, "route", "add", "default", "via", n.gateway]);
  await withNetworkLock(async () => {
    await ensureChains();
    const forward = (await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim();
    if (forward !== "1") {
      // Remember that forwarding was off, so the last network to go turns it off again.
      await writeFile(FORWARD_ORIG, forward, { flag: "wx" }).catch(() => undefined);
      await writeFile("/proc/sys/net/ipv4/ip_forward", "1");
    }
    for (const r of sandboxRules(n, sandboxId)) await xtables(r.family, r.table, "-A", r.chain, ...r.spec);
  });
}

/** Removes everything {@link reserveNetwork} and {@link setupNetwork} made; safe to call twice. */
export async function teardownNetwork(n: SandboxNetwork, sandboxId: string): Promise<void> {
  await withNetworkLock(async () => {
    for (const r of sandboxRules(n, sandboxId)) {
      // Every copy, in case a retried setup added one twice.
      while (
        await xtables(r.family, r.table, "-D", r.chain, ...r.spec).then(
          () => true,
          () => false,
        )
      ) {}
    }
    await sh("ip", ["link", "del", n.hostIf]).catch(() => undefined);
    await sh("ip", ["netns", "del", n.netns]).catch(() => undefined);
    await rm(join(NET_DIR, String(n.slot)), { recursive: true, force: true });
    if ((await takenSlots()) > 0) return;
    await removeChains();
    const orig = await readFile(FORWARD_ORIG, "utf8").catch(() => undefined);
    if (orig !== undefined) {
      await writeFile("/proc/sys/net/ipv4/ip_forward", orig);
      await rm(FORWARD_ORIG, { force: true });
    }
  });
}

/** The host's upstream DNS servers as a resolv.conf for sandboxes (loopback resolvers are useless there). */
export async function sandboxResolvConf(): Promise<string> {
  const host = await readFile("/etc/resolv.conf", "utf8").catch(() => "");
  const servers = host
    .split("\n")
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((s): s is string => s !== undefined && !s.startsWith("127.") && s !== "::1");
  return `${servers.map((s) => `nameserver ${s}`).join("\n")}\noptions attempts:2 timeout:2\n`;
}
