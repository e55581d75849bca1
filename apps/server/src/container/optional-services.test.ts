/**
 * Port forwarding and the files API on a backend without them (the in-memory test double, as the
 * Kubernetes backend until it implements them): each call is refused with the typed unimplemented
 * error naming the capability and where it is, before any lookup; bad input is invalid_argument
 * first.
 */
import { ChalkError, Code } from "@chalk/core";
import type { CallContext } from "@chalk/rpc";
import pino from "pino";
import { afterEach, describe, expect, test } from "vitest";
import { InMemoryBackend } from "../backend/in-memory-backend.js";
import { defaultExecSlotLimits, ExecSlots } from "../exec-slots.js";
import { ServerMetrics } from "../metrics.js";
import { Containers } from "./containers.js";
import { fileServiceImpl } from "./file-service.js";
import { portForward } from "./port-forward.js";

const backends: InMemoryBackend[] = [];
afterEach(async () => {
  for (const b of backends.splice(0)) await b.close();
});

function setup() {
  const backend = new InMemoryBackend();
  backends.push(backend);
  const metrics = new ServerMetrics(() => backend.records.countByStatus());
  const containers = new Containers({
    backend,
    defaults: () => ({ cpu: "1", memory: "1Gi" }),
    execSlots: new ExecSlots(defaultExecSlotLimits(1)),
    metrics,
    log: pino({ level: "silent" }),
  });
  const ctx = { environment: "default", signal: new AbortController().signal } as unknown as CallContext;
  return { containers, metrics, ctx };
}

async function errorOf(p: Promise<unknown>): Promise<ChalkError> {
  try {
    await p;
  } catch (err) {
    return ChalkError.from(err);
  }
  throw new Error("expected an error");
}

const ID = "00000000-0000-4000-8000-000000000000";

describe("optional services on a backend without them", () => {
  test("PortForward is unimplemented, naming port-forward and the local backend", async () => {
    const { containers, metrics, ctx } = setup();
    async function* requests() {
      yield {
        frame: { case: "open" as const, value: { ref: { case: "id" as const, value: ID }, port: 80 } },
      } as never;
    }
    const err = await errorOf(portForward(containers, metrics, requests(), ctx).next());
    expect(err.code).toBe(Code.Unimplemented);
    expect(err.message).toBe(
      "[unimplemented] port-forward is not available on the in-memory backend; it is on: local",
    );
  });

  test("every files call is unimplemented, after its input was checked", async () => {
    const { containers, metrics, ctx } = setup();
    const files = fileServiceImpl(containers, metrics);
    const container = { ref: { case: "id" as const, value: ID } } as never;
    const calls = [
      () => files.statFile({ container, path: "/etc" } as never, ctx),
      () => files.listFiles({ container, path: "/" } as never, ctx),
      () => files.makeDirectory({ container, path: "/a", parents: true, mode: 0 } as never, ctx),
      () => files.removeFile({ container, path: "/a", recursive: false } as never, ctx),
      () => files.renameFile({ container, from: "/a", to: "/b" } as never, ctx),
      () =>
        files
          .readFile({ container, path: "/a" } as never, ctx)
          [Symbol.asyncIterator]()
          .next(),
    ];
    for (const call of calls) {
      const err = await errorOf(call());
      expect(err.code).toBe(Code.Unimplemented);
      expect(err.message).toMatch(/files is not available on the in-memory backend/);
    }
    const bad = await errorOf(files.statFile({ container, path: "/a/../b" } as never, ctx));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.field).toBe("path");
  });
});
