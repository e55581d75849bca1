import { PassThrough } from "node:stream";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { coalesced, MAX_OUTPUT_MESSAGE_BYTES } from "./coalesced.js";

async function collect(stream: PassThrough): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const m of coalesced(stream)) out.push(m);
  return out;
}

describe("coalesced (exec output messages)", () => {
  test("joins what is buffered into one message, bytes and order kept", async () => {
    const s = new PassThrough({ highWaterMark: 1024 * 1024 });
    for (let i = 0; i < 3; i++) s.write(Buffer.alloc(64 * 1024, i));
    s.end();
    const messages = await collect(s);
    expect(messages).toHaveLength(1);
    expect(
      Buffer.concat(messages).equals(Buffer.concat([0, 1, 2].map((i) => Buffer.alloc(64 * 1024, i)))),
    ).toBe(true);
  });

  test("a chunk goes out at once, without waiting for more", async () => {
    const s = new PassThrough();
    const it = coalesced(s)[Symbol.asyncIterator]();
    s.write("line\n");
    expect(Buffer.from((await it.next()).value as Uint8Array).toString()).toBe("line\n");
    s.end();
    expect((await it.next()).done).toBe(true);
  });

  test("any chunking: the messages concatenate to the input and stay bounded", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 100_000 }), { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        async (sizes, paced) => {
          const s = new PassThrough({ highWaterMark: 64 * 1024 });
          const chunks = sizes.map((n, i) => Buffer.alloc(n, i % 251));
          const consumed = collect(s);
          for (const c of chunks) {
            if (!s.write(c)) await new Promise((r) => s.once("drain", r));
            if (paced) await new Promise((r) => setImmediate(r));
          }
          s.end();
          const messages = await consumed;
          // Buffer#equals: vitest's deep equality walks megabytes byte by byte.
          expect(Buffer.concat(messages).equals(Buffer.concat(chunks))).toBe(true);
          // Whole buffered reads are joined: a message exceeds the bound by less than one buffer.
          for (const m of messages)
            expect(m.byteLength).toBeLessThan(MAX_OUTPUT_MESSAGE_BYTES + 100_000 + 64 * 1024);
        },
      ),
      { numRuns: 60 },
    );
  });
});
