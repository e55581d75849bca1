import { execFileSync } from "node:child_process";
import { createServer, type Server } from "node:net";
import { ChalkError, Code } from "@chalk/core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DEFAULT_STEP_LIMITS, ImageBuilder } from "../src/builder/index.js";
import { Image } from "../src/index.js";
import { useBuilder, withSandbox } from "./fixtures.js";

const ctx = useBuilder({ open: { stepMemory: "1Gi", stepCpu: "1", stepPids: 256 } });

let hostServer: Server;
let hostPort: number;

beforeAll(async () => {
  // A service of the host's own on every address: build steps must not reach it over IPv6.
  hostServer = createServer((c) => c.end("host secret\n"));
  await new Promise<void>((r) => hostServer.listen({ host: "::", port: 0, ipv6Only: false }, r));
  hostPort = (hostServer.address() as { port: number }).port;
});

afterAll(() => {
  hostServer?.close();
});

/** The host's IPv6 addresses but loopback: its global ones and the link-local ones of every device. */
function hostIpv6(): string[] {
  const out = execFileSync("sh", ["-c", "ip -6 -o addr show | awk '{print $4}' | cut -d/ -f1"], {
    encoding: "utf8",
  });
  return [...new Set(out.split("\n").filter((a) => a !== "" && a !== "::1"))];
}

/** A Python probe, run as a build step: one "ADDR connected|failed" line per address. */
function probe(port: number, addresses: readonly string[]): string {
  const script = [
    "import socket",
    `for a in ${JSON.stringify(addresses)}:`,
    "    ok = False",
    "    for scope in ([1, 2, 3] if a.startswith('fe80:') else [0]):",
    "        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)",
    "        s.settimeout(2)",
    "        try:",
    `            s.connect((a, ${port}, 0, scope)); ok = True`,
    "        except OSError:",
    "            pass",
    "        s.close()",
    "        if ok: break",
    "    print(a, 'connected' if ok else 'failed')",
  ].join("\n");
  return `python3 -c ${shellQuote(script)} > /step-ipv6`;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'"'"'`)}'`;
}

describe("build steps run under limits from the builder's configuration", () => {
  test("a step sees its memory limit as MemTotal, and its process limit", async () => {
    const image = await ctx.h.builder.resolve(
      Image.debianSlim("3.11").runCommands(
        "grep MemTotal /proc/meminfo > /step-memtotal",
        "grep 'Max processes' /proc/self/limits > /step-nproc",
        `echo ${Date.now()} > /step-run`,
      ),
    );
    await withSandbox(ctx.h.runtime, image, async (s) => {
      expect((await s.exec("cat", "/step-memtotal")).stdoutText).toMatch(/^MemTotal:\s+1048576 kB\n$/);
      expect((await s.exec("cat", "/step-nproc")).stdoutText).toMatch(/^Max processes\s+256\s+256\s/);
    });
  });

  test("a build step reaches no host address over IPv6, and its eth0 has no IPv6 address", async () => {
    const targets = hostIpv6();
    expect(targets.some((a) => a.startsWith("fe80:"))).toBe(true);
    const image = await ctx.h.builder.resolve(
      Image.debianSlim("3.11").runCommands(probe(hostPort, targets), "cat /proc/net/if_inet6 > /step-inet6"),
    );
    await withSandbox(ctx.h.runtime, image, async (s) => {
      const results = (await s.exec("cat", "/step-ipv6")).stdoutText.split("\n").filter((l) => l !== "");
      expect(results).toEqual(targets.map((a) => `${a} failed`));
      expect((await s.exec("cat", "/step-inet6")).stdoutText).not.toMatch(/eth0/);
    });
  });

  test("the defaults are 4 GiB, 2 CPUs and 1024 processes", () => {
    expect(DEFAULT_STEP_LIMITS).toEqual({ memory: "4Gi", cpu: "2", pids: 1024 });
  });

  test("bad limits are refused when the builder opens, naming the option", async () => {
    for (const [options, field] of [
      [{ stepMemory: "lots" }, "stepMemory"],
      [{ stepCpu: "many" }, "stepCpu"],
      [{ stepPids: 3 }, "stepPids"],
      [{ stepPids: 1.5 }, "stepPids"],
    ] as const) {
      const err = await ImageBuilder.open({ storeDir: "/nonexistent/never-made", ...options }).catch(
        (e) => e,
      );
      expect(err).toBeInstanceOf(ChalkError);
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.message).toContain(field);
    }
  });
});
