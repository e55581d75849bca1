import { execFile, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { get } from "node:http";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Code } from "@chalk/core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Sandbox } from "../src/index.js";
import { LocalRuntime, RUNSC_VERSION } from "../src/local/index.js";
import { collector, testRootfs } from "./behaviour.js";

const run = promisify(execFile);
const rootfs = testRootfs();
let stateDir: string;
let runtime: LocalRuntime;
const made: Sandbox[] = [];

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "chalk-sbx-only-"));
  runtime = new LocalRuntime({ stateDir });
});

afterAll(async () => {
  for (const s of made) await s.stop().catch(() => undefined);
  await rm(stateDir, { recursive: true, force: true });
});

async function create(options: Parameters<LocalRuntime["create"]>[0]): Promise<Sandbox> {
  const s = await runtime.create(options);
  made.push(s);
  return s;
}

/** Connects from inside a sandbox to addr:port; returns what the attempt printed. */
async function connectFrom(sandbox: Sandbox, addr: string, port: number): Promise<string> {
  const r = await sandbox.exec(
    "perl",
    "-MIO::Socket::INET",
    "-e",
    '$c = IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => $ARGV[1], Timeout => 3); print $c ? "connected\\n" : "failed\\n"',
    addr,
    String(port),
  );
  return r.stdoutText.trim();
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (c) => {
        body += c;
      });
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
  });
}

describe("in-process runtime only", () => {
  test("a second OS process lists, reattaches to and execs in a running sandbox", async () => {
    const sandbox = await create({ rootfs, labels: { who: "first-process" } });
    const fixture = join(import.meta.dirname, "fixtures", "reattach.ts");
    const { stdout } = await run(
      "npx",
      ["tsx", "--conditions=@chalk/source", fixture, stateDir, sandbox.id],
      {
        cwd: join(import.meta.dirname, ".."),
      },
    );
    const out = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
    expect(out.listed).toContain(sandbox.id);
    expect(out.stdout).toBe(`reattached in ${sandbox.id}\n`);
    expect(out.exitCode).toBe(0);
  });

  test("a missing runsc is an unavailable error naming the setup command, before any work", async () => {
    const before = (await runtime.list()).map((i) => i.id);
    const missing = new LocalRuntime({ stateDir, runscPath: "/nonexistent/runsc" });
    const err = await missing.create({ rootfs }).catch((e) => e);
    expect(err).toMatchObject({ code: Code.Unavailable });
    expect(err.message).toMatch(/runsc .*not found at \/nonexistent\/runsc.*tooling\/scripts\/setup\.sh/);
    expect((await runtime.list()).map((i) => i.id)).toEqual(before);
  });

  test("a runsc of another version (Debian's 2022 build) is refused naming both versions, before any work", async () => {
    const dir = await mkdtemp(join(tmpdir(), "chalk-foreign-runsc-"));
    try {
      const foreign = join(dir, "runsc");
      await writeFile(foreign, "#!/bin/sh\necho 'runsc version 0.0~20221219.0'\necho 'spec: 1.0.2-dev'\n", {
        mode: 0o755,
      });
      const before = (await runtime.list()).map((i) => i.id);
      const err = await new LocalRuntime({ stateDir, runscPath: foreign }).create({ rootfs }).catch((e) => e);
      expect(err).toMatchObject({ code: Code.FailedPrecondition });
      expect(err.message).toContain("0.0~20221219.0");
      expect(err.message).toContain(RUNSC_VERSION);
      expect(err.message).toContain("tooling/scripts/setup.sh");
      expect((await runtime.list()).map((i) => i.id)).toEqual(before);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a PTY without the relay built is an unavailable error naming the setup command", async () => {
    const sandbox = await create({ rootfs });
    const noRelay = new LocalRuntime({ stateDir, ptyRelayPath: "/nonexistent/chalk-pty-relay" });
    const again = await noRelay.get(sandbox.id);
    const err = await again.spawn(["sh"], { pty: { cols: 80, rows: 24 } }).catch((e) => e);
    expect(err).toMatchObject({ code: Code.Unavailable });
    expect(err.message).toMatch(/chalk-pty-relay.*not found.*tooling\/scripts\/setup\.sh/);
    // Without a PTY the same sandbox still runs commands.
    expect((await again.exec("echo", "fine")).stdoutText).toBe("fine\n");
  });

  test("a sandbox without network has only loopback", async () => {
    const sandbox = await create({ rootfs });
    const r = await sandbox.exec("cat", "/proc/net/dev");
    expect(r.stdoutText).toContain("lo:");
    expect(r.stdoutText).not.toContain("eth0");
    expect((await sandbox.info()).address).toBeUndefined();
  });

  describe("networking", () => {
    let a: Sandbox;
    let b: Sandbox;
    let hostServer: Server;
    let hostPort: number;

    beforeAll(async () => {
      [a, b] = await Promise.all([
        create({ rootfs, network: { ports: [8080] } }),
        create({ rootfs, network: true }),
      ]);
      const server = await a.spawn([
        "perl",
        "-MIO::Socket::INET",
        "-e",
        '$s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) or die "listen: $!"; $| = 1; print "listening\\n"; while ($c = $s->accept) { while (defined($l = <$c>) && $l ne "\\r\\n") {} print $c "HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\nhello from the sandbox\\n"; close $c }',
      ]);
      await collector(server.stdout).until("listening");
      // A service of the host's own, which sandboxes must not reach.
      hostServer = createServer((c) => c.end("host secret\n"));
      await new Promise<void>((r) => hostServer.listen(0, "0.0.0.0", r));
      hostPort = (hostServer.address() as { port: number }).port;
    });

    afterAll(() => {
      hostServer?.close();
    });

    test("the sandbox's own network stack (netstack) holds the namespace's interface", async () => {
      // gVisor took eth0 over: the sandbox sees it, the host kernel's stack in the namespace no
      // longer has the address (runsc --network=sandbox moved it into the sandbox).
      expect((await a.exec("cat", "/proc/net/dev")).stdoutText).toMatch(/^\s*eth0:/m);
      const meta = JSON.parse(readFileSync(join(stateDir, "sandboxes", a.id, "meta.json"), "utf8"));
      const { address } = await a.info();
      const { stdout } = await run("ip", ["-n", meta.net.netns, "addr", "show", "dev", "eth0"]);
      expect(stdout).toContain("eth0");
      expect(stdout).not.toContain(address as string);
    });

    test("the host reaches a port served inside the sandbox at its address", async () => {
      const { address } = await a.info();
      expect(address).toMatch(/^10\.213\.\d+\.\d+$/);
      expect(await httpGet(`http://${address}:8080/`)).toBe("hello from the sandbox\n");
    });

    test("one sandbox cannot reach another", async () => {
      const { address } = await a.info();
      expect(await connectFrom(b, address as string, 8080)).toBe("failed");
    });

    test("a sandbox cannot reach the host's own services", async () => {
      const { address } = await b.info();
      const gateway = (address as string).replace(/\d+$/, (n) => String(Number(n) - 1));
      expect(await connectFrom(b, gateway, hostPort)).toBe("failed");
      const hostAddr = execFileSync(
        "sh",
        ["-c", "ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1"],
        {
          encoding: "utf8",
        },
      ).trim();
      if (hostAddr) expect(await connectFrom(b, hostAddr, hostPort)).toBe("failed");
    });

    test("stop removes the namespace, veth pair, iptables rules, mounts and cgroups", async () => {
      const namespaces = async () =>
        (await run("ip", ["netns", "list"])).stdout.split("\n").map((l) => l.split(" ")[0]);
      const before = new Set(await namespaces());
      const c = await create({ rootfs, network: true, memory: "256Mi" });
      const id = c.id;
      const tagged = async () =>
        (await run("iptables-save")).stdout.split("\n").filter((l) => l.includes(`chalk:${id}`));
      expect((await tagged()).length).toBeGreaterThan(0);
      await c.stop();
      expect(await tagged()).toEqual([]);
      const { stdout: mounts } = await run("cat", ["/proc/mounts"]);
      expect(mounts).not.toContain(id);
      expect(
        execFileSync("sh", ["-c", `ls -d /sys/fs/cgroup/*/chalk/${id} 2>/dev/null || true`], {
          encoding: "utf8",
        }),
      ).toBe("");
      expect((await namespaces()).filter((n) => n?.startsWith("chalk-") && !before.has(n))).toEqual([]);
    });
  });
});
