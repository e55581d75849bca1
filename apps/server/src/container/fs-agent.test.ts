import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { encodeFrame, FrameDecoder } from "./fs-agent.js";

describe("files agent frames", () => {
  test("frames split at any points decode to the same headers and bodies, in order", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ id: fc.nat(), body: fc.uint8Array({ maxLength: 2000 }) }), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.array(fc.nat({ max: 5000 }), { maxLength: 6 }),
        (frames, cuts) => {
          const bytes = Buffer.concat(frames.map((f) => encodeFrame({ id: f.id, op: "x" }, f.body)));
          const points = [...new Set(cuts.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b);
          const decoder = new FrameDecoder();
          const out: { id: number; body: Buffer }[] = [];
          let from = 0;
          for (const p of [...points, bytes.byteLength]) {
            for (const f of decoder.push(bytes.subarray(from, p)))
              out.push({ id: f.header.id, body: f.body });
            from = p;
          }
          expect(out.map((f) => f.id)).toEqual(frames.map((f) => f.id));
          expect(out.map((f) => f.body.toString("hex"))).toEqual(
            frames.map((f) => Buffer.from(f.body).toString("hex")),
          );
        },
      ),
    );
  });

  test("a frame over the bounds is refused before it is buffered", () => {
    const lens = Buffer.alloc(8);
    lens.writeUInt32BE(10, 0);
    lens.writeUInt32BE(2 * 1024 * 1024, 4);
    expect(() => new FrameDecoder().push(lens)).toThrow(/too large/);
  });
});
