import { describe, expect, test } from "vitest";
import { hostOf, isLoopback } from "./address.js";

describe("addresses", () => {
  test.each([
    "127.0.0.1:50051",
    "127.8.9.10:1",
    "localhost:0",
    "LOCALHOST:1",
    "[::1]:50051",
    "[0:0:0:0:0:0:0:1]:1",
  ])("%s is loopback", (a) => expect(isLoopback(a)).toBe(true));

  test.each([
    "0.0.0.0:50051",
    "[::]:1",
    "10.0.0.1:1",
    "128.0.0.1:1",
    "127.0.0.1.example.com:1",
    "localhost.example.com:1",
    "[::ffff:10.0.0.1]:1",
    "chalk.internal:50051",
  ])("%s is not loopback", (a) => expect(isLoopback(a)).toBe(false));

  test("hostOf strips the port and IPv6 brackets", () => {
    expect(hostOf("[::1]:50051")).toBe("::1");
    expect(hostOf("chalk.internal:443")).toBe("chalk.internal");
  });
});
