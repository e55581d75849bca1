/**
 * docker's exit codes for every kind of start failure the sandbox reports (`exec "<argv0>": …`,
 * with the field at fault), against an in-memory container double whose probe answers whether a
 * path exists. The same codes through the real CLI and server: test/containers.test.ts.
 */
import type { Container } from "@chalk/container";
import { ChalkError, Code } from "@chalk/core";
import { describe, expect, test } from "vitest";
import { startFailureCode } from "./attach.js";

/** An in-memory container double: `test -e PATH` succeeds for the paths in `existing`. */
function containerWith(existing: string[]): Pick<Container, "sandbox"> {
  return {
    sandbox: {
      exec: async (...args: string[]) => ({ exitCode: existing.includes(args.at(-1) ?? "") ? 0 : 1 }),
    },
  } as unknown as Pick<Container, "sandbox">;
}

const fail = (argv0: string, code: Code, rest: string, field?: string) =>
  new ChalkError(code, `exec ${JSON.stringify(argv0)}: ${rest}`, field ? { field } : {});

describe("startFailureCode: docker's codes", () => {
  const c = containerWith(["/etc/hostname", "/etc"]);
  test.each([
    // A bad working directory: docker exec -w gives 126 (runc: chdir to cwd failed), whatever the command.
    [
      "true",
      fail("true", Code.NotFound, 'workdir "/missing": it does not exist in the sandbox', "workdir"),
      126,
    ],
    ["/bin/true", fail("/bin/true", Code.NotFound, 'workdir "/missing": it does not exist', "workdir"), 126],
    ["nope", fail("nope", Code.NotFound, 'workdir "/missing": it does not exist', "workdir"), 126],
    [
      "true",
      fail("true", Code.FailedPrecondition, 'workdir "/etc/hostname": it is not a directory', "workdir"),
      126,
    ],
    ["true", fail("true", Code.PermissionDenied, 'workdir "/root": permission denied', "workdir"), 126],
    // The command.
    ["nope", fail("nope", Code.NotFound, 'program "nope" not found in PATH', "argv[0]"), 127],
    ["/no/such", fail("/no/such", Code.NotFound, 'program "/no/such" does not exist', "argv[0]"), 127],
    ["/etc/hostname", fail("/etc/hostname", Code.FailedPrecondition, "cannot be executed", "argv[0]"), 126],
    ["/etc", fail("/etc", Code.FailedPrecondition, "cannot be executed", "argv[0]"), 126],
    ["x", fail("x", Code.PermissionDenied, "permission denied", "argv[0]"), 126],
    ["x", fail("x", Code.FailedPrecondition, "not in an executable format", "argv[0]"), 126],
  ])("%s: %s → %i", async (argv0, err, code) => {
    expect(await startFailureCode(c, argv0, err)).toBe(code);
  });

  test("failures that are not the command's start are chalk's or the server's (125: undefined here)", async () => {
    for (const err of [
      new ChalkError(Code.NotFound, 'container "web" not found'),
      new ChalkError(Code.Unavailable, "connect ECONNREFUSED"),
      new ChalkError(Code.FailedPrecondition, 'container "web" is Stopped'),
      // Another command's failure does not count as this one's.
      fail("other", Code.NotFound, 'workdir "/missing": it does not exist', "workdir"),
    ])
      expect(await startFailureCode(c, "true", err)).toBeUndefined();
  });
});
