import { execFile } from "node:child_process";
import { mkdir, readdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";

/**
 * The private subnet sandboxes live in. No host route covers it here (the host has 192.0.2.0/24);
 * each sandbox gets one /30 of it: the host end of its veth pair and the sandbox's address.
 */
export const SANDBOX_SUBNET = "10.213.0.0/16";
const SLOTS = 16_384;

/** Allocations are machine-wide (any runtime, any state dir): one directory per taken /30. */
const ALLOC_DIR = "/run/chalk-net";

/** One sandbox's network: its namespace, veth pair and addresses. */
export interface SandboxNetwork {
  /** Name of the network namespace (`/var/run/netns/<name>`). */
  netns: string;
  /** Host end of the veth pair. */
  hostIf: string;
  /** Address of the host end (the sandbox's gateway). */
  gateway: string;
  /** The sandbox's address, reachable from the host. */
  address: string;
  /** The /30 slot this network holds. */
  slot: number;
}

function sh(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, (err, stdout, stderr) =>
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

function slotAddresses(slot: number): { gateway: string; address: string } {
  const base = slot * 4;
  const third = Math.floor(base / 256);
  const fourth = base % 256;
  return { gateway: `10.213.${third}.${fourth + 1}`, address: `10.213.${third}.${fourth + 2}` };
}

/** The iptables rules of one sandbox, each tagged with a comment naming it. */
function rules(n: SandboxNetwork, tag: string): { table: string; chain: string; spec: string[] }[] {
  const c = ["-m", "comment", "--comment", tag];
  return [
    // Outbound traffic leaves through the host's address.
    {
      table: "nat",
      chain: "POSTROUTING",
      spec: ["-s", `${n.address}/32`, "!", "-d", SANDBOX_SUBNET, ...c, "-j", "MASQUERADE"],
    },
    // Sandboxes never reach each other.
    { table: "filter", chain: "FORWARD", spec: ["-i", n.hostIf, "-d", SANDBOX_SUBNET, ...c, "-j", "DROP"] },
    { table: "filter", chain: "FORWARD", spec: ["-i", n.hostIf, ...c, "-j", "ACCEPT"] },
    {
      table: "filter",
      chain: "FORWARD",
      spec: ["-o", n.hostIf, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", ...c, "-j", "ACCEPT"],
    },
    // The sandbox cannot open connections to the host's own services; replies to the host pass.
    {
      table: "filter",
      chain: "INPUT",
      spec: ["-i", n.hostIf, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", ...c, "-j", "ACCEPT"],
    },
    { table: "filter", chain: "INPUT", spec: ["-i", n.hostIf, ...c, "-j", "DROP"] },
  ];
}

async function allocateSlot(owner: string): Promise<number> {
  await mkdir(ALLOC_DIR, { recursive: true });
  const start = Math.floor(Math.random() * SLOTS);
  for (let i = 0; i < SLOTS; i++) {
    const slot = (start + i) % SLOTS;
    try {
      await mkdir(join(ALLOC_DIR, String(slot)));
      await writeFile(join(ALLOC_DIR, String(slot), "owner"), owner);
      return slot;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw ChalkError.from(err);
    }
  }
  throw new ChalkError(Code.ResourceExhausted, `no free address left in ${SANDBOX_SUBNET}`);
}

async function enableForwarding(): Promise<void> {
  const current = (await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim();
  if (current === "1") return;
  // Remember that forwarding was off, so the last network to go turns it off again.
  await writeFile(join(ALLOC_DIR, "ip_forward.orig"), current, { flag: "wx" }).catch(() => undefined);
  await writeFile("/proc/sys/net/ipv4/ip_forward", "1");
}

async function restoreForwarding(): Promise<void> {
  const entries = await readdir(ALLOC_DIR).catch(() => [] as string[]);
  if (entries.some((e) => /^\d+$/.test(e))) return;
  const orig = await readFile(join(ALLOC_DIR, "ip_forward.orig"), "utf8").catch(() => undefined);
  if (orig !== undefined) {
    await writeFile("/proc/sys/net/ipv4/ip_forward", orig);
    await rm(join(ALLOC_DIR, "ip_forward.orig"), { force: true });
  }
}

/** The names a sandbox's network uses, derived from a short unique key. */
export function networkNames(key: string): { netns: string; hostIf: string; peerIf: string } {
  return { netns: `chalk-${key}`, hostIf: `chk${key}`, peerIf: `chk${key}p` };
}

/**
 * Creates a network namespace with a veth pair into it, an address from {@link SANDBOX_SUBNET},
 * a default route, NAT for outbound traffic, and rules that keep the sandbox from other sandboxes
 * and from the host's services. Undone completely by {@link teardownNetwork}, also halfway.
 */
export async function setupNetwork(key: string, sandboxId: string): Promise<SandboxNetwork> {
  const names = networkNames(key);
  const slot = await allocateSlot(sandboxId);
  const n: SandboxNetwork = { netns: names.netns, hostIf: names.hostIf, slot, ...slotAddresses(slot) };
  try {
    await sh("ip", ["netns", "add", n.netns]);
    await sh("ip", ["link", "add", n.hostIf, "type", "veth", "peer", "name", names.peerIf]);
    await sh("ip", ["link", "set", names.peerIf, "netns", n.netns]);
    await sh("ip", ["-n", n.netns, "link", "set", names.peerIf, "name", "eth0"]);
    await sh("ip", ["-n", n.netns, "addr", "add", `${n.address}/30`, "dev", "eth0"]);
    await sh("ip", ["-n", n.netns, "link", "set", "eth0", "up"]);
    await sh("ip", ["-n", n.netns, "link", "set", "lo", "up"]);
    await sh("ip", ["addr", "add", `${n.gateway}/30`, "dev", n.hostIf]);
    await sh("ip", ["link", "set", n.hostIf, "up"]);
    await sh("ip", ["-n", n.netns, "route", "add", "default", "via", n.gateway]);
    await enableForwarding();
    // Each rule goes to the top of its chain; inserting the list backwards keeps its order there.
    for (const r of rules(n, `chalk:${sandboxId}`).reverse()) {
      await sh("iptables", ["-w", "-t", r.table, "-I", r.chain, "1", ...r.spec]);
    }
    return n;
  } catch (err) {
    await teardownNetwork(n, sandboxId);
    throw err;
  }
}

/** Removes everything {@link setupNetwork} made; safe to call twice or after a partial setup. */
export async function teardownNetwork(n: SandboxNetwork, sandboxId: string): Promise<void> {
  for (const r of rules(n, `chalk:${sandboxId}`)) {
    // Delete every copy of the rule, in case a retried setup added one twice.
    for (let i = 0; i < 4; i++) {
      try {
        await sh("iptables", ["-w", "-t", r.table, "-D", r.chain, ...r.spec]);
      } catch {
        break;
      }
    }
  }
  await sh("ip", ["link", "del", n.hostIf]).catch(() => undefined);
  await sh("ip", ["netns", "del", n.netns]).catch(() => undefined);
  await rm(join(ALLOC_DIR, String(n.slot)), { recursive: true, force: true });
  await rmdir(join(ALLOC_DIR, String(n.slot))).catch(() => undefined);
  await restoreForwarding().catch(() => undefined);
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
