/**
 * `chalk port-forward` as a user runs it: the built binary forwards a local port to a running
 * container's port through a real server until interrupted; bad mappings are usage errors.
 */
import { spawn } from "node:child_process";
import { Container } from "@chalk/container";
import { describe, expect, test } from "vitest";
import { FORWARD_ENTRYPOINT, FORWARD_PORT } from "../../../packages/container/test/port-forward-server.ts";
import { parsePortMapping } from "../src/commands/port-forward.js";
import { CHALK } from "./cli.js";
import { oneErrorLine, TEST_IMAGE, uniqueName, useCli } from "./fixtures.js";

const cli = useCli();

describe("chalk port-forward", () => {
  test("forwards LOCAL:REMOTE until SIGINT, then exits 0", async () => {
    const c = await new Container({
      image: TEST_IMAGE,
      name: uniqueName("pf"),
      port: FORWARD_PORT,
      entrypoint: FORWARD_ENTRYPOINT,
      readiness: { port: FORWARD_PORT },
      transport: cli.server.transport(),
    }).run();
    try {
      const child = spawn(process.execPath, [CHALK, "port-forward", c.name, `:${FORWARD_PORT}`], {
        env: cli.env(),
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.once("close", resolve));
      const address = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          stdout += d.toString();
          const m = /^Forwarding from (127\.0\.0\.1:\d+) -> 8080$/m.exec(stdout);
          if (m) resolve(m[1] as string);
        });
        child.once("close", () => reject(new Error(`chalk exited: ${stderr}`)));
      });
      const res = await fetch(`http://${address}/hello`);
      expect(await res.text()).toBe("hello from the container\n");
      child.kill("SIGINT");
      expect(await exited, stderr).toBe(0);
      expect(stderr).toBe("");
    } finally {
      await c.stop();
    }
  });

  test("a bad mapping is a usage error (exit 2) before any work", async () => {
    for (const mapping of ["abc", "80:", "0:80", "70000", "1:2:3"]) {
      const r = await cli.chalk(["port-forward", "whatever", mapping]);
      expect(r.code, mapping).toBe(2);
      expect(r.stderr).toContain(mapping);
    }
  });

  test("a container that does not exist is not_found (exit 1)", async () => {
    const r = await cli.chalk(["port-forward", uniqueName("missing"), "8080:80"]);
    expect(r.code).toBe(1);
    expect(oneErrorLine(r.stderr, "not_found"), r.stderr).toBe(true);
  });

  test("mappings parse as kubectl's", () => {
    expect(parsePortMapping("8080:80")).toEqual({ local: 8080, remote: 80 });
    expect(parsePortMapping(":80")).toEqual({ local: 0, remote: 80 });
    expect(parsePortMapping("5432")).toEqual({ local: 5432, remote: 5432 });
  });
});
