/**
 * Port forwarding over the server's TLS: the tunnel rides the container's own verified TLS
 * connection, as a client on another machine (which cannot reach the container's address) uses it.
 */
import { describe, expect } from "vitest";
import { containerTest, TEST_IMAGE, useServer } from "./fixtures.js";
import { download, FORWARD_ENTRYPOINT, FORWARD_PORT } from "./port-forward-server.js";

const ctx = useServer([], { tls: true });
const test = containerTest(() => ctx.server);

describe("c.forward(port) over TLS", () => {
  test("carries an HTTP request and a 100 MiB download, byte for byte", async ({ run }) => {
    expect(ctx.server.transport().tls).toBe(true);
    const c = await run({
      image: TEST_IMAGE,
      name: `fwd-tls-${Math.random().toString(36).slice(2, 8)}`,
      port: FORWARD_PORT,
      memory: "1Gi",
      entrypoint: FORWARD_ENTRYPOINT,
      readiness: { port: FORWARD_PORT },
    });
    const made = await c.exec(
      "sh",
      "-c",
      "head -c 104857600 /dev/urandom > /tmp/blob && sha256sum /tmp/blob",
    );
    await using fwd = await c.forward(FORWARD_PORT);
    const res = await fetch(`http://${fwd.address}/hello`);
    expect(await res.text()).toBe("hello from the container\n");
    const blob = await download(fwd.address, "/tmp/blob");
    expect(blob).toEqual({ status: 200, bytes: 100 * 1024 * 1024, sha256: made.stdoutText.split(" ")[0] });
  });
});
