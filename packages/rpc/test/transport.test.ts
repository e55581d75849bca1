/**
 * The transport: TLS with certificate verification, plaintext only on loopback, malformed bodies
 * answered with invalid_argument after the interceptors, deadlines, and a server's start, stop and
 * close, all through real grpc-js servers and clients on loopback.
 */
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { SandboxService } from "@chalk/proto/sandbox/v1";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, test } from "vitest";
import {
  addService,
  createClient,
  createServer,
  createTransport,
  listen,
  type RpcServer,
  type ServerCreateOptions,
  type ServiceImpl,
  type Transport,
} from "../src/index.js";
import { createTestCertificate, type TestCertificate } from "../src/testing.js";

const cleanups: (() => unknown)[] = [];

/** Every process warning of this file's run (Node warns once per process, at the first occurrence). */
const warnings: string[] = [];
process.on("warning", (w) => warnings.push(w.message));
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Ids of waitSandbox calls whose signal aborted. */
const aborted = new Set<string>();

const impl = {
  async getSandbox(req) {
    return { sandbox: { id: req.id } };
  },
  async waitSandbox(req, ctx) {
    await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
    aborted.add(req.id);
    return {};
  },
  async *exec(requests) {
    for await (const req of requests) {
      if (req.message.case === "stdin")
        yield { event: { case: "output", value: { data: req.message.value } } };
    }
  },
} as Partial<ServiceImpl<typeof SandboxService>> as ServiceImpl<typeof SandboxService>;

async function serve(options: Partial<ServerCreateOptions> = {}): Promise<RpcServer> {
  const server = await listen({
    address: "127.0.0.1:0",
    ...options,
    register: (s) =>
      addService(s, SandboxService, impl, {
        interceptors: [
          (ctx) => {
            if (ctx.metadata("authorization") !== "Bearer right-token") {
              throw new ChalkError(Code.Unauthenticated, "invalid bearer token");
            }
          },
        ],
      }),
  });
  cleanups.push(() => server.close());
  return server;
}

function connect(
  options: Parameters<typeof createTransport>[0],
): ReturnType<typeof createClient<typeof SandboxService>> {
  const transport: Transport = createTransport({ token: "right-token", ...options });
  cleanups.push(() => transport.close());
  return createClient(SandboxService, transport);
}

function certificate(): TestCertificate {
  const c = createTestCertificate();
  cleanups.push(() => c.remove());
  return c;
}

describe("TLS", () => {
  test("a client that trusts the server's CA calls it over TLS", async () => {
    const cert = certificate();
    const server = await serve({ tls: { cert: cert.cert, key: cert.key } });
    expect(server.tls).toBe(true);
    const client = connect({ address: server.address, tls: { ca: cert.cert } });
    expect((await client.getSandbox({ id: "x" })).sandbox?.id).toBe("x");
  });

  test("CHALK_TLS_CA names the CA file, and turns TLS on for a loopback address", async () => {
    const cert = certificate();
    const server = await serve({ tls: { cert: cert.cert, key: cert.key } });
    const before = process.env.CHALK_TLS_CA;
    process.env.CHALK_TLS_CA = cert.certFile;
    cleanups.push(() => {
      if (before === undefined) delete process.env.CHALK_TLS_CA;
      else process.env.CHALK_TLS_CA = before;
    });
    const client = connect({ address: server.address });
    expect((await client.getSandbox({ id: "y" })).sandbox?.id).toBe("y");
  });

  test("a certificate signed by another CA fails verification with a typed unavailable", async () => {
    const cert = certificate();
    const other = certificate();
    const server = await serve({ tls: { cert: cert.cert, key: cert.key } });
    const client = connect({ address: server.address, tls: { ca: other.cert } });
    const err = await client.getSandbox({ id: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChalkError);
    expect(err).toMatchObject({ code: Code.Unavailable });
  });

  test("a name the certificate does not carry fails verification; serverName overrides the name checked", async () => {
    const cert = certificate();
    const server = await serve({ tls: { cert: cert.cert, key: cert.key } });
    const port = server.address.split(":").pop();
    const wrongName = connect({
      address: `127.0.0.1:${port}`,
      tls: { ca: cert.cert, serverName: "chalk.example" },
    });
    await expect(wrongName.getSandbox({ id: "x" })).rejects.toMatchObject({ code: Code.Unavailable });
    const named = connect({ address: `127.0.0.1:${port}`, tls: { ca: cert.cert, serverName: "localhost" } });
    expect((await named.getSandbox({ id: "z" })).sandbox?.id).toBe("z");
  });

  test("addressed by IP, the certificate must name that IP; no warning about an IP as server name", async () => {
    const dnsOnly = createTestCertificate({ onlyNames: ["chalk.example"] });
    cleanups.push(() => dnsOnly.remove());
    const server = await serve({ tls: { cert: dnsOnly.cert, key: dnsOnly.key } });
    const byIp = connect({ address: server.address, tls: { ca: dnsOnly.cert } });
    await expect(byIp.getSandbox({ id: "x" })).rejects.toMatchObject({ code: Code.Unavailable });
    const byName = connect({
      address: server.address,
      tls: { ca: dnsOnly.cert, serverName: "chalk.example" },
    });
    expect((await byName.getSandbox({ id: "n" })).sandbox?.id).toBe("n");
    expect(warnings.filter((w) => w.includes("IP address"))).toEqual([]);
  });

  test("a plaintext client cannot talk to a TLS server, nor a TLS client to a plaintext one", async () => {
    const cert = certificate();
    const tlsServer = await serve({ tls: { cert: cert.cert, key: cert.key } });
    const plain = connect({ address: tlsServer.address, tls: false });
    await expect(plain.getSandbox({ id: "x" })).rejects.toMatchObject({ code: Code.Unavailable });
    const plainServer = await serve();
    const overTls = connect({ address: plainServer.address, tls: { ca: cert.cert } });
    await expect(overTls.getSandbox({ id: "x" })).rejects.toMatchObject({ code: Code.Unavailable });
  });

  test("a server refuses to start plaintext on an address that is not loopback", async () => {
    for (const address of ["0.0.0.0:0", "[::]:0", "10.213.255.1:0"]) {
      const server = createServer({ address });
      cleanups.push(() => server.close());
      const err = await server.start().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ChalkError);
      expect(err).toMatchObject({ code: Code.FailedPrecondition, field: "tls" });
      expect((err as Error).message).toContain("not a loopback address");
    }
  });

  test("a client refuses to send a token in plaintext to an address that is not loopback", () => {
    expect(() => createTransport({ address: "10.213.255.1:50051", token: "t", tls: false })).toThrow(
      expect.objectContaining({ code: Code.InvalidArgument, field: "tls" }),
    );
    // Off loopback, TLS is the default.
    const t = createTransport({ address: "10.213.255.1:50051", token: "t" });
    expect(t.tls).toBe(true);
    t.close();
  });

  test("a CA that is not PEM is refused before connecting", () => {
    expect(() => createTransport({ address: "127.0.0.1:1", tls: { ca: "not a certificate" } })).toThrow(
      expect.objectContaining({ code: Code.InvalidArgument, field: "tls.ca" }),
    );
    const broken = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    expect(() => createTransport({ address: "127.0.0.1:1", tls: { ca: broken } })).toThrow(
      expect.objectContaining({ code: Code.InvalidArgument, field: "tls.ca" }),
    );
  });
});

describe("requests at the edge", () => {
  function rawCall(address: string, path: string, body: Buffer, token: string) {
    const raw = new grpc.Client(address, grpc.credentials.createInsecure());
    cleanups.push(() => raw.close());
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${token}`);
    return new Promise<grpc.ServiceError | null>((resolve) => {
      raw.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        body,
        md,
        (err) => resolve(err),
      );
    });
  }

  test("a malformed body is invalid_argument naming the request, not internal", async () => {
    const server = await serve();
    // Field 1 (id, a string) with a length running past the end of the message.
    const err = await rawCall(
      server.address,
      "/chalk.sandbox.v1.SandboxService/GetSandbox",
      Buffer.from([0x0a, 0x7f, 0x41]),
      "right-token",
    );
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(
      /^\[invalid_argument\] request: not a valid chalk\.sandbox\.v1\.GetSandboxRequest message/,
    );
  });

  test("invalid UTF-8 in a string field is invalid_argument", async () => {
    const server = await serve();
    const err = await rawCall(
      server.address,
      "/chalk.sandbox.v1.SandboxService/GetSandbox",
      Buffer.from([0x0a, 0x02, 0xc3, 0x28]),
      "right-token",
    );
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  test("a malformed body from an unauthenticated caller is unauthenticated: auth runs before decoding", async () => {
    const server = await serve();
    const err = await rawCall(
      server.address,
      "/chalk.sandbox.v1.SandboxService/GetSandbox",
      Buffer.from([0xff, 0xff, 0xff]),
      "wrong",
    );
    expect(err?.code).toBe(grpc.status.UNAUTHENTICATED);
  });

  test("a malformed message inside a request stream fails the stream with invalid_argument", async () => {
    const server = await serve();
    const raw = new grpc.Client(server.address, grpc.credentials.createInsecure());
    cleanups.push(() => raw.close());
    const md = new grpc.Metadata();
    md.set("authorization", "Bearer right-token");
    const call = raw.makeBidiStreamRequest(
      "/chalk.sandbox.v1.SandboxService/Exec",
      (b: Buffer) => b,
      (b: Buffer) => b,
      md,
    );
    const ended = new Promise<grpc.ServiceError>((resolve) => call.on("error", resolve));
    call.on("data", () => undefined);
    // A valid stdin message, then one with a truncated field.
    call.write(Buffer.from([0x12, 0x01, 0x61]));
    call.write(Buffer.from([0x12, 0x05, 0x61]));
    call.end();
    expect((await ended).code).toBe(grpc.status.INVALID_ARGUMENT);
  });
});

describe("calls and servers", () => {
  test("a deadline bounds a call: deadline_exceeded, and the handler sees its signal abort", async () => {
    const server = await serve();
    const client = connect({ address: server.address });
    const err = await client
      .waitSandbox({ id: "deadline" }, { deadline: new Date(Date.now() + 200) })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: Code.DeadlineExceeded });
    await expect.poll(() => aborted.has("deadline")).toBe(true);
  });

  test("an aborted signal cancels a call", async () => {
    const server = await serve();
    const client = connect({ address: server.address });
    const ac = new AbortController();
    const pending = client.waitSandbox({ id: "signal" }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await expect(pending).rejects.toMatchObject({ code: Code.Canceled });
    await expect.poll(() => aborted.has("signal")).toBe(true);
  });

  test("stop() ends calls still running after the grace period and resolves; calls then fail with unavailable", async () => {
    const server = await serve();
    const client = connect({ address: server.address });
    const pending = client.waitSandbox({ id: "x" }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await server.stop({ gracePeriodSeconds: 0.3 });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await pending).toMatchObject({ code: expect.any(Number) });
    await expect(client.getSandbox({ id: "x" })).rejects.toMatchObject({ code: Code.Unavailable });
  });

  test("start() on a taken port fails with unavailable naming the address", async () => {
    const first = await serve();
    const second = createServer({ address: first.address });
    cleanups.push(() => second.close());
    await expect(second.start()).rejects.toMatchObject({ code: Code.Unavailable });
  });

  test("a transport not made by createTransport is refused with invalid_argument", () => {
    const fake = { address: "127.0.0.1:1", environment: "default", tls: false, close() {} };
    expect(() => createClient(SandboxService, fake)).toThrow(
      expect.objectContaining({ code: Code.InvalidArgument }),
    );
  });

  test("the CA file in CHALK_TLS_CA must be readable", () => {
    const before = process.env.CHALK_TLS_CA;
    process.env.CHALK_TLS_CA = join("/nonexistent", "ca.pem");
    try {
      expect(() => createTransport({ address: "127.0.0.1:1" })).toThrow(
        expect.objectContaining({ code: Code.InvalidArgument }),
      );
    } finally {
      if (before === undefined) delete process.env.CHALK_TLS_CA;
      else process.env.CHALK_TLS_CA = before;
    }
  });
});
