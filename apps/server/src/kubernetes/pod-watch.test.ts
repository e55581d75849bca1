import { describe, expect, test } from "vitest";
import { restartDelayMs } from "./pod-watch.js";

describe("restartDelayMs", () => {
  test("a broken watch waits 1 s, doubling at each break in a row, never more than 30 s", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 100].map(restartDelayMs)).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
  });
});
