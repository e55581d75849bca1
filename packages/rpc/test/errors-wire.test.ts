/**
 * Errors that survive the wire: every code, thrown with a field and details by a handler behind a
 * real grpc-js server, reaches the client equal, field by field, to the same error thrown in process.
 */
import { ChalkError, Code, type ErrorDetails } from "@chalk/core";
import { SandboxService } from "@chalk/proto/sandbox/v1";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  addService,
  createClient,
  createTransport,
  listen,
  MAX_STATUS_DETAILS_BYTES,
  MAX_STATUS_MESSAGE_LENGTH,
  type RpcServer,
  type ServiceImpl,
  STATUS_DETAILS_TRAILER,
  type Transport,
} from "../src/index.js";

const codes = Object.values(Code).filter((c): c is Code => typeof c === "number");

const details: ErrorDetails = {
  id: "sbx-1",
  stdout: "partial output\n",
  unicode: "ümlaut ✓ 🚀 \u0000 nul",
  exitCode: 3,
  negative: -1.5,
  big: 2 ** 53 - 1,
  timedOut: true,
  signal: null,
  missing: ["DB_PASSWORD", "API_KEY"],
  nested: { step: 2, phases: [{ name: "build", ok: false }] },
  empty: {},
};

/** The error case `name` throws: one per code, each with a field and details. */
function errorFor(name: string): ChalkError {
  const code = Number(name.split(":")[1]) as Code;
  return new ChalkError(code, `what went wrong for ${name}`, {
    field: `spec.resources.memory`,
    details: { ...details, code },
  });
}

/** What a caller can observe of an error. */
function observed(err: unknown) {
  const e = err as ChalkError;
  return {
    isChalkError: err instanceof ChalkError,
    name: e.name,
    code: e.code,
    message: e.message,
    rawMessage: e.rawMessage,
    field: e.field,
    details: e.details,
  };
}

const impl = {
  async getSandbox(req) {
    throw errorFor(req.id);
  },
  async *exec(requests) {
    for await (const req of requests) {
      if (req.message.case === "start") throw errorFor(req.message.value.argv[0] ?? "");
    }
    yield { event: { case: "exited", value: { exitCode: 0 } } };
  },
  async listSandboxes() {
    throw new Error("a bug: /var/lib/chalk/secrets.db.key is unreadable");
  },
  async stopSandbox(req) {
    throw new ChalkError(Code.NotFound, `sandbox ${JSON.stringify(req.id)} not found`);
  },
  async createSandbox() {
    throw new ChalkError(Code.FailedPrecondition, "too much", { details: { blob: "x".repeat(64 * 1024) } });
  },
} as Partial<ServiceImpl<typeof SandboxService>> as ServiceImpl<typeof SandboxService>;

let server: RpcServer;
let transport: Transport;
let client: ReturnType<typeof createClient<typeof SandboxService>>;
beforeAll(async () => {
  server = await listen({ address: "127.0.0.1:0", register: (s) => addService(s, SandboxService, impl) });
  transport = createTransport({ address: server.address, token: "" });
  client = createClient(SandboxService, transport);
});
afterAll(async () => {
  transport?.close();
  await server?.stop({ gracePeriodSeconds: 1 });
});

describe("errors across the wire", () => {
  test.each(codes.map((c) => [c]))("code %i from a unary call equals the in-process error", async (code) => {
    const name = `case:${code}`;
    const local = await impl.getSandbox({ id: name } as never, {} as never).catch((e: unknown) => e);
    const remote = await client.getSandbox({ id: name }).catch((e: unknown) => e);
    expect(observed(remote)).toEqual(observed(local));
    expect(observed(remote).isChalkError).toBe(true);
    expect(observed(remote).details).toEqual({ ...details, code });
  });

  test.each(codes.map((c) => [c]))(
    "code %i from a response stream equals the in-process error",
    async (code) => {
      const name = `case:${code}`;
      async function* start() {
        yield { message: { case: "start" as const, value: { argv: [name] } } };
      }
      const local = errorFor(name);
      const remote = await (async () => {
        for await (const _ of client.exec(start())) {
          // No response comes: the handler throws first.
        }
      })().catch((e: unknown) => e);
      expect(observed(remote)).toEqual(observed(local));
    },
  );

  test("an error that is not a ChalkError becomes internal with the request id, and reveals nothing", async () => {
    const err = (await client.listSandboxes({}).catch((e: unknown) => e)) as ChalkError;
    expect(err).toBeInstanceOf(ChalkError);
    expect(err.code).toBe(Code.Internal);
    expect(err.message).toMatch(/^\[internal\] internal error \(request [0-9a-f]{12}\)$/);
    expect(err.details).toEqual({ requestId: expect.stringMatching(/^[0-9a-f]{12}$/) });
    expect(JSON.stringify(observed(err))).not.toContain("secrets.db");
  });

  test("details too large for a trailer are replaced by { truncated: true }, code and message kept", async () => {
    const err = (await client.createSandbox({}).catch((e: unknown) => e)) as ChalkError;
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toBe("[failed_precondition] too much");
    expect(err.details).toEqual({ truncated: true });
  });

  test("a message quoting a huge value is cut to MAX_STATUS_MESSAGE_LENGTH; the connection survives", async () => {
    const id = "🚀".repeat(100_000);
    const err = (await client.stopSandbox({ id }).catch((e: unknown) => e)) as ChalkError;
    expect(err.code).toBe(Code.NotFound);
    expect(err.message.length).toBeLessThan(MAX_STATUS_MESSAGE_LENGTH + 40);
    expect(err.message).toMatch(/^\[not_found\] sandbox "🚀+… \(\d+ more characters\)$/u);
    // The same channel still serves.
    await expect(client.getSandbox({ id: "case:5" })).rejects.toMatchObject({ code: Code.NotFound });
  });

  test("the trailer is a google.rpc.Status-shaped message of at most MAX_STATUS_DETAILS_BYTES", async () => {
    // A plain grpc-js client: what a client in any language sees.
    const raw = new grpc.Client(server.address, grpc.credentials.createInsecure());
    const trailer = await new Promise<Buffer>((resolve) => {
      raw.makeUnaryRequest(
        "/chalk.sandbox.v1.SandboxService/GetSandbox",
        () => Buffer.from([0x0a, 0x06, ...Buffer.from("case:5")]),
        (b: Buffer) => b,
        {},
        (err) => resolve(err?.metadata.get(STATUS_DETAILS_TRAILER)[0] as Buffer),
      );
    });
    raw.close();
    expect(trailer.byteLength).toBeLessThanOrEqual(MAX_STATUS_DETAILS_BYTES);
    // google.rpc.Status: field 1 (varint) code 5, field 2 the message, field 3 an Any with the type URL.
    expect(trailer.subarray(0, 2)).toEqual(Buffer.from([0x08, 0x05]));
    expect(trailer.toString("latin1")).toContain("type.googleapis.com/chalk.rpc.v1.ErrorDetail");
  });
});
