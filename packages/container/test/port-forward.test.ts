/**
 * Port forwarding through the public SDK (`c.forward(port)`) against a real server and gVisor: an
 * HTTP request, a 100 MiB download checked by SHA-256, concurrent connections, half-close both
 * ways, backpressure with bounded memory, and the errors.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { ContainerService } from "@chalk/proto/container/v1";
import { createClient } from "@chalk/rpc";
import { describe, expect } from "vitest";
import { ChalkError, Code } from "../src/index.js";
import { containerTest, TEST_IMAGE, useServer } from "./fixtures.js";
import { download, FORWARD_ENTRYPOINT, FORWARD_PORT } from "./port-forward-server.js";

const ctx = useServer();
const test = containerTest(() => ctx.server);
const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
const MiB = 1024 * 1024;

/** Connects to `address` (host:port) with half-open sockets. */
function dial(address: string): Promise<Socket> {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    const s = connect({ host: host as string, port: Number(port), allowHalfOpen: true });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Everything `socket` sends until its FIN (resolves at `end`, which half-open sockets report). */
function readAll(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.once("end", () => resolve(Buffer.concat(chunks)));
    socket.once("error", reject);
  });
}

/** The echo mode: sends `payload`, half-closes, and returns what came back. */
async function echo(address: string, payload: Buffer): Promise<Buffer> {
  const s = await dial(address);
  try {
    const received = readAll(s);
    s.write("ECHO\n");
    s.end(payload);
    return await received;
  } finally {
    s.destroy();
  }
}

function rssBytes(pid: number): number {
  const kib = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kib) * 1024;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("c.forward(port)", () => {
  const server = {
    image: TEST_IMAGE,
    port: FORWARD_PORT,
    memory: "1Gi",
    entrypoint: FORWARD_ENTRYPOINT,
    readiness: { port: FORWARD_PORT },
  };

  test("carries an HTTP request and a 100 MiB download, byte for byte", async ({ run }) => {
    const c = await run({ ...server, name: unique("fwd-http") });
    const made = await c.exec(
      "sh",
      "-c",
      "head -c 104857600 /dev/urandom > /tmp/blob && sha256sum /tmp/blob",
    );
    const expected = made.stdoutText.split(" ")[0];
    await using fwd = await c.forward(FORWARD_PORT);
    expect(fwd.host).toBe("127.0.0.1");
    const res = await fetch(`http://${fwd.address}/hello`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("hello from the container\n");
    const blob = await download(fwd.address, "/tmp/blob");
    expect(blob).toEqual({ status: 200, bytes: 100 * MiB, sha256: expected });
  });

  test("tunnels concurrent connections, each to its own peer", async ({ run }) => {
    const c = await run({ ...server, name: unique("fwd-many") });
    await using fwd = await c.forward(FORWARD_PORT);
    const payloads = Array.from({ length: 12 }, (_, i) => randomBytes(64 * 1024 * (i + 1)));
    const [echoes, pages] = await Promise.all([
      Promise.all(payloads.map((p) => echo(fwd.address, p))),
      Promise.all(
        Array.from({ length: 12 }, () => fetch(`http://${fwd.address}/hello`).then((r) => r.text())),
      ),
    ]);
    echoes.forEach((got, i) => {
      const p = payloads[i] as Buffer;
      expect(got.subarray(0, p.byteLength).equals(p)).toBe(true);
      expect(got.subarray(p.byteLength).toString()).toBe(`TOTAL ${p.byteLength}\n`);
    });
    expect(pages).toEqual(Array(12).fill("hello from the container\n"));
    await sleep(200);
    expect(fwd.connections).toBe(0);
  });

  test("half-close travels both ways", async ({ run }) => {
    const c = await run({ ...server, name: unique("fwd-half") });
    await using fwd = await c.forward(FORWARD_PORT);
    // Client → container: our FIN reaches the container, which still writes its total after it.
    expect((await echo(fwd.address, Buffer.from("abc"))).toString()).toBe("abcTOTAL 3\n");
    // Container → client: its FIN ends our readable side while we can still write to it.
    const s = await dial(fwd.address);
    const received = readAll(s);
    s.write("SHUT\n");
    expect((await received).toString()).toBe("bye\n");
    s.end("written after the container's FIN");
    await new Promise((r) => s.once("close", r));
    let after = "";
    for (let i = 0; i < 50 && !after; i++) {
      after = (await c.exec("sh", "-c", "cat /tmp/after-shut 2>/dev/null || true")).stdoutText;
      if (!after) await sleep(100);
    }
    expect(after).toBe("written after the container's FIN");
  });

  test("a container that closes while the client still writes ends that connection only", async ({ run }) => {
    const c = await run({ ...server, name: unique("fwd-close") });
    await using fwd = await c.forward(FORWARD_PORT);
    for (let i = 0; i < 5; i++) {
      const s = await dial(fwd.address);
      s.on("error", () => undefined);
      const closed = new Promise((r) => s.once("close", r));
      s.write("CLOSE\n");
      // Keep writing after the container closed: the tunnel ends, nothing else does.
      for (let j = 0; j < 64 && !s.destroyed; j++) {
        s.write(randomBytes(64 * 1024));
        await sleep(5);
      }
      s.end();
      await closed;
    }
    // The forward and the server still serve.
    expect(await (await fetch(`http://${fwd.address}/hello`)).text()).toBe("hello from the container\n");
    expect(ctx.server.exitCode).toBeNull();
  });

  test("a reader that stops reading stalls the container's writer; memory stays bounded", async ({ run }) => {
    const c = await run({ ...server, name: unique("fwd-slow") });
    await c.exec("sh", "-c", "head -c 209715200 /dev/zero > /tmp/zeros");
    await using fwd = await c.forward(FORWARD_PORT);
    const s = await dial(fwd.address);
    try {
      s.write("GET /tmp/zeros HTTP/1.1\r\nHost: x\r\n\r\n");
      let got = 0;
      let stall = true;
      s.on("data", (chunk: Buffer) => {
        got += chunk.byteLength;
        if (stall && got > MiB) s.pause();
      });
      const serverBefore = rssBytes(ctx.server.pid);
      const clientBefore = process.memoryUsage().rss;
      await sleep(3000);
      const stalledAt = got;
      // Nothing like 200 MiB piled up anywhere: not read locally, not held by the SDK or the server.
      expect(stalledAt).toBeLessThan(64 * MiB);
      expect(rssBytes(ctx.server.pid) - serverBefore).toBeLessThan(64 * MiB);
      expect(process.memoryUsage().rss - clientBefore).toBeLessThan(64 * MiB);
      // Reading again resumes the transfer to the end.
      const done = new Promise((r) => {
        s.once("end", r);
        s.once("close", r);
      });
      stall = false;
      s.resume();
      await done;
      expect(got).toBeGreaterThan(200 * MiB);
    } finally {
      s.destroy();
    }
  });

  test("errors: a bad port is refused up front; a closed port or no network resets the connection, saying why", async ({
    run,
  }) => {
    const c = await run({ ...server, name: unique("fwd-err") });
    for (const port of [0, -1, 65536, 1.5]) {
      const err = await c.forward(port).then(
        () => undefined,
        (e: unknown) => ChalkError.from(e),
      );
      expect(err?.code).toBe(Code.InvalidArgument);
      expect(err?.field).toBe("port");
    }
    const errors: ChalkError[] = [];
    await using closed = await c.forward(9, { onError: (e) => errors.push(e) });
    const s = await dial(closed.address);
    await new Promise((r) => s.once("close", r));
    expect(errors[0]?.code).toBe(Code.Unavailable);
    expect(errors[0]?.message).toMatch(/port 9 /);

    const quiet = await run({ image: TEST_IMAGE, name: unique("fwd-nonet") });
    const noNet: ChalkError[] = [];
    await using fwd = await quiet.forward(80, { onError: (e) => noNet.push(e) });
    const t = await dial(fwd.address);
    await new Promise((r) => t.once("close", r));
    expect(noNet[0]?.code).toBe(Code.FailedPrecondition);
    expect(noNet[0]?.message).toMatch(/no network/);
  });

  test("another environment's container is not found, and nothing is dialled", async ({ run }) => {
    const c = await run({ ...server, name: unique("fwd-env") });
    const other = createClient(ContainerService, ctx.server.transport("team-a"));
    async function* requests() {
      yield {
        frame: {
          case: "open" as const,
          value: { ref: { case: "id" as const, value: c.id }, port: FORWARD_PORT },
        },
      };
    }
    const err = await (async () => {
      for await (const _ of other.portForward(requests())) {
        // nothing may arrive
      }
    })().then(
      () => undefined,
      (e: unknown) => ChalkError.from(e),
    );
    expect(err?.code).toBe(Code.NotFound);
  });

  test("a stream that does not start with open, or sends open twice, is invalid_argument", async ({
    run,
  }) => {
    const c = await run({ ...server, name: unique("fwd-proto") });
    const client = createClient(ContainerService, ctx.server.transport());
    const open = {
      frame: {
        case: "open" as const,
        value: { ref: { case: "id" as const, value: c.id }, port: FORWARD_PORT },
      },
    };
    const data = { frame: { case: "data" as const, value: new Uint8Array([1]) } };
    for (const frames of [
      [data],
      [open, open],
      [],
      [{ frame: { case: "open" as const, value: { port: 80 } } }],
    ]) {
      const err = await (async () => {
        for await (const _ of client.portForward(
          (async function* () {
            yield* frames;
          })(),
        )) {
          // drain
        }
      })().then(
        () => undefined,
        (e: unknown) => ChalkError.from(e),
      );
      expect(err?.code, JSON.stringify(frames.map((f) => f.frame.case))).toBe(Code.InvalidArgument);
    }
  });
});
