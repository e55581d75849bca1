/**
 * The per-connection unary read budget (issue 8 #6): a connection can have at most
 * `maxUnaryReadsPerConnection` unary request messages arriving at once, so the bytes grpc-js holds
 * for it before any handler runs are bounded; calls beyond wait (their bytes held back by HTTP/2
 * flow control), other connections are not affected, and a handler that runs long does not hold
 * a turn. Driven with a raw HTTP/2 client that sends only part of a message, against a real server.
 */
import { type ClientHttp2Session, connect, constants } from "node:http2";
import { setTimeout as sleep } from "node:timers/promises";
import { type GetSandboxRequest, SandboxService } from "@chalk/proto/sandbox/v1";
import { afterEach, describe, expect, test } from "vitest";
import { addService, createServer, type RpcServer } from "../src/index.js";

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanup.splice(0).reverse()) c();
});

/** A server whose GetSandbox handler records each call and waits until `release()`. */
async function serve(limit: number) {
  const started: string[] = [];
  const waiting: Array<() => void> = [];
  const server: RpcServer = createServer({ address: "127.0.0.1:0", maxUnaryReadsPerConnection: limit });
  addService(server, SandboxService, {
    async getSandbox(req: GetSandboxRequest) {
      started.push(req.id);
      await new Promise<void>((r) => waiting.push(r));
      return { sandbox: { id: req.id } };
    },
  } as never);
  const address = await server.start();
  cleanup.push(() => server.close());
  return {
    address,
    started,
    release: () => {
      for (const r of waiting.splice(0)) r();
    },
  };
}

function session(address: string): ClientHttp2Session {
  const s = connect(`http://${address}`);
  s.on("error", () => undefined);
  cleanup.push(() => s.destroy());
  return s;
}

/** A GetSandbox request message (`id` = field 1) in gRPC framing. */
function frame(id: string, declaredExtra = 0): Buffer {
  const body = Buffer.concat([Buffer.from([0x0a, id.length]), Buffer.from(id)]);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(body.length + declaredExtra, 1);
  return Buffer.concat([header, body]);
}

/** Opens a GetSandbox call and writes `data` (a whole message, or the start of one). */
function call(s: ClientHttp2Session, data: Buffer, end: boolean) {
  const stream = s.request({
    [constants.HTTP2_HEADER_METHOD]: "POST",
    [constants.HTTP2_HEADER_PATH]: "/chalk.sandbox.v1.SandboxService/GetSandbox",
    "content-type": "application/grpc",
    te: "trailers",
    "x-chalk-environment": "default",
  });
  stream.on("error", () => undefined);
  stream.resume();
  if (end) stream.end(data);
  else stream.write(data);
  return stream;
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await sleep(20);
}

describe("unary read budget per connection", () => {
  test("calls beyond the budget wait while messages are arriving, and go once one ends", async () => {
    const srv = await serve(2);
    const s = session(srv.address);
    // Two calls whose messages never finish arriving (1 MiB announced, a few bytes sent).
    const stuck = [call(s, frame("p1", 1 << 20), false), call(s, frame("p2", 1 << 20), false)];
    await sleep(300);
    call(s, frame("whole"), true);
    // Another connection has its own budget: its call runs at once.
    call(session(srv.address), frame("other-conn"), true);
    await until(() => srv.started.includes("other-conn"));
    await sleep(500);
    expect(srv.started).not.toContain("whole");
    // One read ends (the client cancels it): the waiting call takes its turn.
    stuck[0]?.close(constants.NGHTTP2_CANCEL);
    await until(() => srv.started.includes("whole"));
    srv.release();
  });

  test("a handler that runs long does not hold a turn: many calls run at once on one connection", async () => {
    const srv = await serve(1);
    const s = session(srv.address);
    for (let i = 0; i < 40; i++) call(s, frame(`c${i}`), true);
    await until(() => srv.started.length === 40);
    srv.release();
  });

  test("the limit must be a positive integer", () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => createServer({ address: "127.0.0.1:0", maxUnaryReadsPerConnection: bad })).toThrow(
        /maxUnaryReadsPerConnection/,
      );
    }
  });
});
