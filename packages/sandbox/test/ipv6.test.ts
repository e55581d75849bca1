import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Sandbox } from "../src/index.js";
import { LocalRuntime } from "../src/local/index.js";
import { collector, testRootfs } from "./behaviour.js";

/**
 * Connects over IPv6 from inside a sandbox with plain sockets (no name resolution, so libc's
 * AI_ADDRCONFIG cannot refuse before a packet is sent), 2 s per try: a link-local address with each
 * scope id from 1 to 3 (it needs its interface's index: eth0 is 2 in gVisor), others with none.
 * Prints one line per address: "ADDR connected" or "ADDR failed".
 */
const CONNECT6 = String.raw`
use Socket qw(:all);
my $port = shift @ARGV;
for my $host (@ARGV) {
  my $ok = 0;
  for my $scope ($host =~ /^fe80:/i ? (1 .. 3) : (0)) {
    socket(my $s, AF_INET6, SOCK_STREAM, 0) or last;
    my $addr = inet_pton(AF_INET6, $host) or last;
    local $SIG{ALRM} = sub { die "timeout\n" };
    eval { alarm 2; $ok = 1 if connect($s, pack_sockaddr_in6($port, $addr, $scope, 0)); alarm 0; };
    alarm 0;
    last if $ok;
  }
  print "$host ", ($ok ? "connected" : "failed"), "\n";
}`;

/** The link-local address a device gets from its MAC (EUI-64), whether or not it has it now. */
function linkLocalOf(mac: string): string {
  const b = mac.split(":").map((x) => Number.parseInt(x, 16));
  const eui = [(b[0] as number) ^ 2, b[1], b[2], 0xff, 0xfe, b[3], b[4], b[5]] as number[];
  const groups = [0, 2, 4, 6].map((i) => (((eui[i] as number) << 8) | (eui[i + 1] as number)).toString(16));
  return `fe80::${groups.join(":")}`;
}

function sh(cmd: string): string {
  return execFileSync("sh", ["-c", cmd], { encoding: "utf8" }).trim();
}

/** The host's own IPv6 addresses (global and link-local) on its interfaces, and ::1. */
function hostAddresses(): string[] {
  const out = sh("ip -6 -o addr show | awk '{print $4}' | cut -d/ -f1");
  return [...new Set(out.split("\n").filter((a) => a !== ""))];
}

const rootfs = testRootfs();
let stateDir: string;
let runtime: LocalRuntime;
const made: Sandbox[] = [];
let hostServer: Server;
let hostPort: number;

async function create(options: Parameters<LocalRuntime["create"]>[0]): Promise<Sandbox> {
  const s = await runtime.create(options);
  made.push(s);
  return s;
}

function metaOf(s: Sandbox): { net?: { hostIf: string; netns: string; address: string } } {
  return JSON.parse(readFileSync(join(stateDir, "sandboxes", s.id, "meta.json"), "utf8"));
}

/** Starts a listener inside a sandbox on an IPv6 address (dual-stack on "::"), answering each connection. */
async function listen6(sandbox: Sandbox, address: string, port: number): Promise<void> {
  const server = await sandbox.spawn([
    "perl",
    "-MSocket=:all",
    "-e",
    'my ($a, $p) = @ARGV; socket(my $s, AF_INET6, SOCK_STREAM, 0) or die; setsockopt($s, IPPROTO_IPV6, IPV6_V6ONLY, 0); bind($s, pack_sockaddr_in6($p, inet_pton(AF_INET6, $a))) or die "bind: $!"; listen($s, 5); $| = 1; print "listening\n"; while (accept(my $c, $s)) { print $c "sandbox\n"; close $c }',
    address,
    String(port),
  ]);
  await collector(server.stdout).until("listening");
}

async function tryFrom(sandbox: Sandbox, port: number, addresses: readonly string[]): Promise<string[]> {
  const r = await sandbox.exec("perl", "-e", CONNECT6, String(port), ...addresses);
  return r.stdoutText.split("\n").filter((l) => l !== "");
}

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "chalk-sbx-ipv6-"));
  runtime = new LocalRuntime({ stateDir });
  // A service of the host's own on every address, IPv6 and IPv4: no sandbox may reach it.
  hostServer = createServer((c) => c.end("host secret\n"));
  await new Promise<void>((r) => hostServer.listen({ host: "::", port: 0, ipv6Only: false }, r));
  hostPort = (hostServer.address() as { port: number }).port;
});

afterAll(async () => {
  for (const s of made) await s.stop().catch(() => undefined);
  hostServer?.close();
  await rm(stateDir, { recursive: true, force: true });
});

describe("IPv6: no way from a sandbox to the host or to another sandbox", () => {
  let withPort: Sandbox;
  let withoutPort: Sandbox;
  let noNetwork: Sandbox;

  beforeAll(async () => {
    [withPort, withoutPort, noNetwork] = await Promise.all([
      create({ rootfs, network: { ports: [8080] } }),
      create({ rootfs, network: true }),
      create({ rootfs }),
    ]);
  });

  test("neither end of a sandbox's veth pair has an IPv6 address, and IPv6 is off on both", () => {
    for (const s of [withPort, withoutPort]) {
      const net = metaOf(s).net as { hostIf: string; netns: string };
      expect(sh(`ip -6 -o addr show dev ${net.hostIf}`)).toBe("");
      expect(sh(`cat /proc/sys/net/ipv6/conf/${net.hostIf}/disable_ipv6`)).toBe("1");
      expect(sh(`ip netns exec ${net.netns} cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6`)).toBe("1");
    }
  });

  test("inside, eth0 has no IPv6 address; loopback keeps ::1 and IPv6 works on it", async () => {
    const inet6 = (await withPort.exec("cat", "/proc/net/if_inet6")).stdoutText;
    expect(inet6).not.toMatch(/eth0/);
    await listen6(withPort, "::1", 9999);
    expect(await tryFrom(withPort, 9999, ["::1"])).toEqual(["::1 connected"]);
  });

  test("a host listener on [::] is unreachable at every host address, from a sandbox with a port, one without, and one without network", async () => {
    for (const s of [withPort, withoutPort, noNetwork]) {
      const net = metaOf(s).net;
      const targets = hostAddresses().filter((a) => a !== "::1");
      // The link-local address the host's end of this sandbox's veth would have with IPv6 on
      // (the one the issue reached), and the IPv4 gateway as an IPv4-mapped address.
      if (net) {
        targets.push(linkLocalOf(sh(`cat /sys/class/net/${net.hostIf}/address`)));
        targets.push(`::ffff:${net.address.replace(/\d+$/, (n) => String(Number(n) - 1))}`);
      }
      expect(targets.some((a) => a.startsWith("fe80:"))).toBe(true);
      const results = await tryFrom(s, hostPort, targets);
      expect(results).toEqual(targets.map((a) => `${a} failed`));
    }
  });

  test("another sandbox is unreachable at any IPv6 address its interface could have", async () => {
    await listen6(withPort, "::", 8080);
    const a = metaOf(withPort).net as { netns: string; address: string };
    const mac = sh(`ip netns exec ${a.netns} cat /sys/class/net/eth0/address`);
    const targets = [linkLocalOf(mac), `::ffff:${a.address}`];
    expect(await tryFrom(withoutPort, 8080, targets)).toEqual(targets.map((t) => `${t} failed`));
  });

  test("the sandboxes' ip6tables rules drop IPv6 at the host, and go with their sandbox", async () => {
    const id = withoutPort.id;
    const tagged = () =>
      sh("ip6tables-save")
        .split("\n")
        .filter((l) => l.includes(`chalk:${id}`));
    expect(tagged().length).toBe(3);
    expect(tagged().every((l) => l.endsWith("-j DROP"))).toBe(true);
    await withoutPort.stop();
    expect(tagged()).toEqual([]);
    await withPort.stop();
    // With no sandbox network left on the machine (other work may hold one), the chains go too.
    const slots = readdirSync("/run/chalk-net").filter((e) => /^\d+$/.test(e));
    if (slots.length === 0) expect(sh("ip6tables-save | grep -c CHALK || true")).toBe("0");
  });
});
