import { ChalkError, Code } from "@chalk/core";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { defaultExecSlotLimits, type ExecClaim, ExecSlots, type ReleaseSlot } from "./exec-slots.js";

// Logic only: no runsc. The real execs are in test/exec-slots.test.ts.
const claim = (container: string, environment = "default", longLived = false, stdinBytes = 0): ExecClaim => ({
  container,
  environment,
  longLived,
  stdinBytes,
});

async function errorOf(p: Promise<unknown>): Promise<ChalkError> {
  try {
    await p;
  } catch (err) {
    return ChalkError.from(err);
  }
  throw new Error("expected an error");
}

describe("ExecSlots", () => {
  test("32 held execs in container A leave container B a slot at once (issue 10)", async () => {
    const slots = new ExecSlots(defaultExecSlotLimits(32));
    const held = Array.from({ length: 32 }, () => slots.acquire(claim("a")));
    await Promise.resolve();
    expect(slots.running).toBe(16);
    expect(slots.queued).toBe(16);
    // Granted without any of A's execs ending.
    const release = await slots.acquire(claim("b"));
    expect(slots.running).toBe(17);
    release();
    // A's waiters go on as A's own execs end.
    const first = (await Promise.race(held)) as ReleaseSlot;
    first();
    expect(slots.running).toBe(16);
  });

  test("long-lived execs get their own bound below the container's", async () => {
    const slots = new ExecSlots(defaultExecSlotLimits(32));
    for (let i = 0; i < 4; i++) await slots.acquire(claim("a", "default", true));
    let fifth = false;
    void slots.acquire(claim("a", "default", true)).then(() => {
      fifth = true;
    });
    // A short exec in the same container still runs.
    await slots.acquire(claim("a"));
    await new Promise((r) => setImmediate(r));
    expect(fifth).toBe(false);
    expect(slots.running).toBe(5);
  });

  test("a full queue refuses with resource_exhausted naming the flag", async () => {
    const slots = new ExecSlots(defaultExecSlotLimits(1, { queued: 2, queuedPerEnvironment: 2 }));
    await slots.acquire(claim("a"));
    void slots.acquire(claim("a"));
    void slots.acquire(claim("b"));
    const err = await errorOf(slots.acquire(claim("c")));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.message).toMatch(/--max-queued-execs/);
  });

  test("one environment cannot fill the queue, nor its stdin bound", async () => {
    const slots = new ExecSlots(
      defaultExecSlotLimits(1, { queued: 8, queuedPerEnvironment: 2, queuedStdinBytes: 100 }),
    );
    await slots.acquire(claim("a", "x"));
    void slots.acquire(claim("a", "x"));
    void slots.acquire(claim("a", "x"));
    expect((await errorOf(slots.acquire(claim("a", "x")))).message).toMatch(/environment "x"/);
    void slots.acquire(claim("b", "y", false, 60));
    const err = await errorOf(slots.acquire(claim("c", "z", false, 60)));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.message).toMatch(/--max-queued-exec-stdin-bytes/);
  });

  test("a waiter whose caller gives up leaves the queue", async () => {
    const slots = new ExecSlots(defaultExecSlotLimits(1));
    const release = await slots.acquire(claim("a"));
    const ac = new AbortController();
    const waiting = slots.acquire(claim("a"), ac.signal);
    ac.abort(new ChalkError(Code.Canceled, "gone"));
    expect((await errorOf(waiting)).code).toBe(Code.Canceled);
    expect(slots.queued).toBe(0);
    release();
    expect(slots.running).toBe(0);
  });

  test("random claims and releases never break a bound, and every waiter is served in the end", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            container: fc.constantFrom("a", "b", "c", "d"),
            environment: fc.constantFrom("e1", "e2"),
            longLived: fc.boolean(),
          }),
          { minLength: 1, maxLength: 60 },
        ),
        fc.integer({ min: 1, max: 12 }),
        async (claims, total) => {
          const l = defaultExecSlotLimits(total, { queued: 1000, queuedPerEnvironment: 1000 });
          const slots = new ExecSlots(l);
          const holding: { c: ExecClaim; release: ReleaseSlot }[] = [];
          const check = () => {
            expect(holding.length).toBeLessThanOrEqual(l.total);
            const count = (f: (c: ExecClaim) => boolean) => holding.filter((h) => f(h.c)).length;
            for (const x of ["a", "b", "c", "d"]) {
              expect(count((c) => c.container === x)).toBeLessThanOrEqual(l.perContainer);
              expect(count((c) => c.container === x && c.longLived)).toBeLessThanOrEqual(l.longPerContainer);
            }
            for (const e of ["e1", "e2"]) {
              expect(count((c) => c.environment === e)).toBeLessThanOrEqual(l.perEnvironment);
              expect(count((c) => c.environment === e && c.longLived)).toBeLessThanOrEqual(
                l.longPerEnvironment,
              );
            }
          };
          const all = claims.map((c) =>
            slots.acquire(c).then((release) => {
              holding.push({ c, release });
              check();
            }),
          );
          let served = 0;
          while (served < claims.length) {
            await new Promise((r) => setImmediate(r));
            const h = holding.shift();
            expect(h, "a waiter was never served").toBeDefined();
            h?.release();
            served++;
          }
          await Promise.all(all);
          expect(slots.running).toBe(0);
          expect(slots.queued).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});
