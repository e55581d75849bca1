import { describe, expect, test } from "vitest";
import { Channel } from "./channel.js";

describe("Channel", () => {
  test("a send resolves only once the value was taken", async () => {
    const ch = new Channel<number>();
    let sent = false;
    const p = ch.send(1).then(() => {
      sent = true;
    });
    await Promise.resolve();
    expect(sent).toBe(false);
    expect(await ch.next()).toEqual({ value: 1, done: false });
    await p;
    expect(sent).toBe(true);
  });

  test("iteration ends at close and pending sends resolve", async () => {
    const ch = new Channel<string>();
    const pending = ch.send("a");
    const got: string[] = [];
    const reader = (async () => {
      for await (const v of ch) got.push(v);
    })();
    await pending;
    ch.close();
    await reader;
    expect(got).toEqual(["a"]);
    await ch.send("late");
    expect(ch.closed).toBe(true);
  });
});
