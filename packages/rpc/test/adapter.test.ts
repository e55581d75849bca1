import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code } from "@chalk/core";
import { type ExecRequest, SandboxService } from "@chalk/proto/sandbox/v1";
import { afterEach, describe, expect, test } from "vitest";
import {
  addService,
  bearerToken,
  type CallContext,
  createClient,
  createTransport,
  listen,
  type RpcServer,
  type ServiceImpl,
  type Transport,
} from "../src/index.js";

const open: { server: RpcServer; transports: Transport[] }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    for (const t of o.transports) t.close();
    o.server.close();
  }
});

/** A test implementation of the sandbox service that reports what the adapter delivered to it. */
function harness(overrides: Partial<ServiceImpl<typeof SandboxService>> = {}) {
  const seen = { contexts: [] as CallContext[], produced: 0, cancelled: false };
  const impl: ServiceImpl<typeof SandboxService> = {
    async createSandbox(req, ctx) {
      seen.contexts.push(ctx);
      return {
        sandbox: {
          id: `${ctx.environment}/${req.spec?.id}`,
          labels: { token: bearerToken(ctx.metadata("authorization")) ?? "" },
        },
      };
    },
    async getSandbox(req) {
      if (req.id === "boom") throw new Error("secret internals /etc/shadow");
      throw new ChalkError(Code.NotFound, `sandbox ${JSON.stringify(req.id)} not found`);
    },
    async listSandboxes() {
      return { sandboxes: [] };
    },
    async signalSandbox() {
      return {};
    },
    async waitSandbox() {
      return {};
    },
    async stopSandbox() {
      return {};
    },
    async *exec(requests, ctx) {
      ctx.signal.addEventListener("abort", () => {
        seen.cancelled = true;
      });
      for await (const req of requests as AsyncIterable<ExecRequest>) {
        if (req.message.case === "stdin") {
          yield { event: { case: "output", value: { stream: 1, data: req.message.value } } };
        } else if (req.message.case === "start" && req.message.value.argv[0] === "flood") {
          const chunk = new Uint8Array(1 << 20);
          for (let i = 0; i < 200 && !ctx.signal.aborted; i++) {
            seen.produced++;
            yield { event: { case: "output", value: { stream: 1, data: chunk } } };
          }
        }
      }
      yield { event: { case: "exited", value: { exitCode: 0 } } };
    },
    ...overrides,
  };
  return { impl, seen };
}

async function serve(
  h: ReturnType<typeof harness>,
  transportOptions: Parameters<typeof createTransport>[0] = {},
) {
  const server = await listen({
    address: "127.0.0.1:0",
    register: (s) =>
      addService(s, SandboxService, h.impl, {
        interceptors: [
          (ctx) => {
            if (ctx.metadata("authorization") === "Bearer wrong") {
              throw new ChalkError(Code.Unauthenticated, "invalid token");
            }
          },
        ],
      }),
  });
  const transport = createTransport({ address: server.address, ...transportOptions });
  open.push({ server, transports: [transport] });
  return createClient(SandboxService, transport);
}

describe("@chalk/rpc adapter", () => {
  test("unary calls carry the environment and bearer token headers", async () => {
    const h = harness();
    const client = await serve(h, { token: "t0k", environment: "staging" });
    const res = await client.createSandbox({ spec: { id: "abc" } });
    expect(res.sandbox?.id).toBe("staging/abc");
    expect(res.sandbox?.labels.token).toBe("t0k");
  });

  test("a thrown ChalkError reaches the client with its code and message", async () => {
    const client = await serve(harness());
    const err = await client.getSandbox({ id: "nope" }).catch((e) => e);
    expect(err).toBeInstanceOf(ChalkError);
    expect(err.code).toBe(Code.NotFound);
    expect(err.message).toBe('[not_found] sandbox "nope" not found');
  });

  test("other errors become internal and reveal nothing of the server", async () => {
    const client = await serve(harness());
    const err = await client.getSandbox({ id: "boom" }).catch((e) => e);
    expect(err.code).toBe(Code.Internal);
    expect(err.message).not.toContain("shadow");
  });

  test("an interceptor refuses a call before the handler runs", async () => {
    const h = harness();
    const client = await serve(h, { token: "wrong" });
    const err = await client.createSandbox({ spec: { id: "x" } }).catch((e) => e);
    expect(err.code).toBe(Code.Unauthenticated);
    expect(h.seen.contexts).toHaveLength(0);
  });

  test("bidi streams deliver requests and responses in order", async () => {
    const client = await serve(harness());
    async function* requests() {
      yield { message: { case: "start" as const, value: { argv: ["cat"] } } };
      for (const s of ["a", "b", "c"])
        yield { message: { case: "stdin" as const, value: new TextEncoder().encode(s) } };
    }
    const out: string[] = [];
    for await (const res of client.exec(requests())) {
      if (res.event.case === "output") out.push(new TextDecoder().decode(res.event.value.data));
      if (res.event.case === "exited") out.push(`exit ${res.event.value.exitCode}`);
    }
    expect(out).toEqual(["a", "b", "c", "exit 0"]);
  });

  test("a slow reader holds back the server's producer (backpressure), and a break cancels the call", async () => {
    const h = harness();
    const client = await serve(h);
    let release!: () => void;
    const endOfInput = new Promise<void>((r) => {
      release = r;
    });
    async function* requests() {
      yield { message: { case: "start" as const, value: { argv: ["flood"] } } };
      await endOfInput;
    }
    let consumed = 0;
    for await (const res of client.exec(requests())) {
      if (res.event.case !== "output") continue;
      consumed++;
      if (consumed === 5) {
        await sleep(500);
        // 200 MiB would be produced without flow control; HTTP/2 windows and stream buffers hold only a few.
        expect(h.seen.produced - consumed).toBeLessThan(40);
        break;
      }
    }
    release();
    await expect.poll(() => h.seen.cancelled, { timeout: 5000 }).toBe(true);
    expect(h.seen.produced).toBeLessThan(60);
  });
});
