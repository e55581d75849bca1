import { describe, expect, test } from "vitest";
import { terminal } from "./terminal.js";

const tty = { stdout: { isTTY: true }, stderr: { isTTY: true, columns: 120 } };
const pipes = { stdout: { isTTY: false }, stderr: { isTTY: false } };

describe("terminal()", () => {
  test("a TTY with TERM set animates progress and colours output", () => {
    const t = terminal({ TERM: "xterm-256color" }, tty);
    expect(t).toMatchObject({ live: true, color: true, stdoutTTY: true });
    expect(t.columns()).toBe(120);
  });

  test.each([
    ["CI set (any value, as is-interactive and ora decide)", { TERM: "xterm", CI: "" }],
    ["CI=true", { TERM: "xterm", CI: "true" }],
    ["TERM=dumb", { TERM: "dumb" }],
    ["NO_COLOR", { TERM: "xterm", NO_COLOR: "1" }],
  ])("%s: progress is plain lines, not animation", (_name, env) => {
    expect(terminal(env, tty).live).toBe(false);
  });

  test("CI keeps colour on a TTY; NO_COLOR removes it", () => {
    expect(terminal({ TERM: "xterm", CI: "1" }, tty).color).toBe(true);
    expect(terminal({ TERM: "xterm", NO_COLOR: "1" }, tty).color).toBe(false);
  });

  test("pipes get neither colour nor animation, and 80 columns", () => {
    const t = terminal({ TERM: "xterm" }, pipes);
    expect(t).toMatchObject({ live: false, color: false, stdoutTTY: false });
    expect(t.columns()).toBe(80);
  });
});
