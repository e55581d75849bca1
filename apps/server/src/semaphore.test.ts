import { describe, expect, test } from "vitest";
import { Semaphore } from "./semaphore.js";

describe("Semaphore", () => {
  test("never runs more than the limit at once, and runs everything", async () => {
    const s = new Semaphore(3);
    let running = 0;
    let peak = 0;
    const done = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        s.run(async () => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setImmediate(r));
          running--;
          return i;
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(done).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  test("a failing holder frees its slot", async () => {
    const s = new Semaphore(1);
    await expect(s.run(async () => Promise.reject(new Error("x")))).rejects.toThrow("x");
    expect(await s.run(async () => 1)).toBe(1);
  });
});
