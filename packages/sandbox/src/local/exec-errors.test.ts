import { Code } from "@chalk/core";
import { describe, expect, test } from "vitest";
import { execStartError, runscFatalError } from "./exec-errors.js";

/** The lines runsc's debug log holds when an exec fails to start (pinned runsc, measured). */
const log = (message: string) =>
  [
    "I1201 01:48:56.490001   26321 cli.go:287] **************** gVisor ****************",
    `W1201 01:48:56.493135   26321 util.go:107] FATAL ERROR: ${message}`,
  ].join("\n");

const start = (argv: string[], message: string, workdir = "/") =>
  execStartError({ argv, workdir, path: "/usr/bin:/bin", runscMessage: runscFatalError(log(message)) });

const RUNSC_TEXT = /runsc|executing processes for container|in sandbox|urpc|FATAL/;

describe("why runsc could not start a process, in the user's terms", () => {
  test("runscFatalError takes the last FATAL ERROR line's message, or nothing", () => {
    expect(runscFatalError(log("boom"))).toBe("boom");
    expect(runscFatalError("I1201 nothing fatal here")).toBeUndefined();
  });

  test("a missing working directory is not_found naming it", () => {
    const err = start(
      ["pwd"],
      'executing processes for container: executing command "pwd" in sandbox: failed to find initial working directory "/no/such/dir": no such file or directory',
      "/no/such/dir",
    );
    expect(err).toMatchObject({ code: Code.NotFound, field: "workdir" });
    expect(err.message).toContain('"/no/such/dir"');
    expect(err.message).not.toMatch(RUNSC_TEXT);
  });

  test("a program not in PATH is not_found naming it and the PATH", () => {
    const err = start(
      ["nosuchprog"],
      'executing processes for container: executing command "nosuchprog" in sandbox: error finding executable "nosuchprog" in PATH [/usr/bin /bin]: no such file or directory',
    );
    expect(err).toMatchObject({ code: Code.NotFound, field: "argv[0]" });
    expect(err.message).toContain('"nosuchprog"');
    expect(err.message).toContain("/usr/bin:/bin");
  });

  test.each([
    ["/no/such/prog", "no such file or directory", Code.NotFound],
    ["/notexec", "permission denied", Code.FailedPrecondition],
    ["/etc/hostname", "exec format error", Code.FailedPrecondition],
  ])("%s (%s) names the program", (program, reason, code) => {
    const err = start(
      [program],
      `executing processes for container: executing command "${program}" in sandbox: failed to load ${program}: ${reason}`,
    );
    expect(err).toMatchObject({ code, field: "argv[0]" });
    expect(err.message).toContain(JSON.stringify(program));
    expect(err.message).not.toMatch(RUNSC_TEXT);
  });

  test("anything else is internal, with runsc's words kept out of the message", () => {
    const err = start(["x"], 'urpc method "containerManager.ExecuteAsync" failed: EOF');
    expect(err.code).toBe(Code.Internal);
    expect(err.message).not.toMatch(RUNSC_TEXT);
    expect(String((err.cause as Error).message)).toContain("urpc");
  });
});
