import { Code } from "@chalk/core";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EXEC_LIMITS } from "../src/exec-limits.js";
import type { Sandbox } from "../src/index.js";
import { errorOf, type RuntimeUnderTest, text } from "./behaviour.js";

/** Command lines of the processes running in a sandbox (procfs; no ps in a minbase rootfs). */
async function processes(sandbox: Sandbox): Promise<string[]> {
  const r = await sandbox.exec(
    "sh",
    "-c",
    'for p in /proc/[0-9]*; do [ -r "$p/cmdline" ] && tr "\\0" " " < "$p/cmdline" && echo; done',
  );
  return r.stdoutText.split("\n").filter((l) => l.trim() !== "");
}

/** What no message and no stderr may ever contain: runsc's own words. */
const RUNSC_TEXT = /runsc|urpc|containerManager|executing processes for container|waiting on pid|no output/;

/**
 * Exec behaviour of issue 10 that every runtime must show, in-process and through gRPC: an exec
 * returns when its process exits whatever background children hold its output, `timeoutSecs`
 * bounds the whole call, bad working directories and programs get typed errors naming them, the
 * kernel's limits on argv and environment are checked first, and runsc's own text never reaches a
 * message or an output stream.
 */
export function execBehaviour(label: string, setup: () => Promise<RuntimeUnderTest>): void {
  describe(`exec behaviour (${label})`, () => {
    let rt: RuntimeUnderTest;
    let sandbox: Sandbox;

    beforeAll(async () => {
      rt = await setup();
      sandbox = await rt.runtime.create({ ...rt.base, memory: "512Mi", labels: { suite: `exec-${label}` } });
      await sandbox.exec(
        "sh",
        "-c",
        "mkdir -p /noperm && chmod 000 /noperm && printf 'echo hi\\n' > /notexec && chmod 644 /notexec",
      );
    });

    afterAll(async () => {
      await sandbox?.stop().catch(() => undefined);
      await rt?.close();
    });

    describe("a background child does not hold the call", () => {
      test('exec("sh", "-c", "sleep 25 & echo started") returns when sh exits, the child still running', async () => {
        const r = await sandbox.exec("sh", "-c", "sleep 25 & echo started");
        expect(r).toMatchObject({ exitCode: 0, signal: null, stdoutText: "started\n", stderrText: "" });
        // Returned before the child ended: it is still there.
        expect((await processes(sandbox)).some((p) => p.startsWith("sleep 25"))).toBe(true);
      });

      test("with timeoutSecs: 3 it returns the same, exit 0, not a timeout", async () => {
        const r = await sandbox.exec("sh", "-c", "sleep 26 & echo started", { timeoutSecs: 3 });
        expect(r).toMatchObject({ exitCode: 0, timedOut: false, stdoutText: "started\n" });
        expect((await processes(sandbox)).some((p) => p.startsWith("sleep 26"))).toBe(true);
      });

      test('exec("sh", "-c", "sleep 100000 &") returns', async () => {
        const r = await sandbox.exec("sh", "-c", "sleep 100000 &");
        expect(r).toMatchObject({ exitCode: 0, stdoutText: "", stderrText: "" });
        expect((await processes(sandbox)).some((p) => p.startsWith("sleep 100000"))).toBe(true);
      });

      test("everything written before the exit is delivered, whatever its size", async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 0, max: 512 * 1024 }),
            fc.integer({ min: 0, max: 70_000 }),
            async (outBytes, errBytes) => {
              const r = await sandbox.exec(
                "sh",
                "-c",
                `sleep 30 & head -c ${outBytes} /dev/zero | tr '\\0' o; head -c ${errBytes} /dev/zero | tr '\\0' e >&2`,
              );
              expect(r.exitCode).toBe(0);
              expect(r.stdout.byteLength).toBe(outBytes);
              expect(r.stderr.byteLength).toBe(errBytes);
            },
          ),
          { numRuns: 6 },
        );
      });

      test("a spawned process's streams end after its exit, background children or not", async () => {
        const proc = await sandbox.spawn(["sh", "-c", "sleep 40 & echo out; echo err >&2"]);
        const [out, err, exit] = await Promise.all([text(proc.stdout), text(proc.stderr), proc.wait()]);
        expect({ out, err, code: exit.exitCode }).toEqual({ out: "out\n", err: "err\n", code: 0 });
      });
    });

    describe("timeoutSecs bounds the whole call", () => {
      test("a timeout kills the process group and throws deadline_exceeded with the partial output", async () => {
        const err = await errorOf(
          sandbox.exec("sh", "-c", "echo before; sleep 100 & sleep 101; echo never", { timeoutSecs: 2 }),
        );
        expect(err.code).toBe(Code.DeadlineExceeded);
        expect(err.details).toMatchObject({ stdout: "before\n", stderr: "" });
        // The whole group went: neither sleep is left.
        const left = await processes(sandbox);
        expect(left.some((p) => p.startsWith("sleep 100 ") || p.startsWith("sleep 101"))).toBe(false);
      });

      test("a timeout also bounds a process that ignores SIGTERM and keeps its output open", async () => {
        const err = await errorOf(
          sandbox.exec("sh", "-c", "trap '' TERM; sleep 102 & while :; do sleep 1; done", { timeoutSecs: 2 }),
        );
        expect(err.code).toBe(Code.DeadlineExceeded);
      });
    });

    describe("a bad working directory or program gets a typed error naming it", () => {
      test('workdir: "/no/such/dir" is not_found naming the directory', async () => {
        const err = await errorOf(sandbox.exec("pwd", { workdir: "/no/such/dir" }));
        expect(err.code).toBe(Code.NotFound);
        expect(err.message).toContain('"/no/such/dir"');
        expect(err.message).not.toMatch(RUNSC_TEXT);
      });

      test("a file as workdir is failed_precondition naming it (gVisor alone would run there)", async () => {
        const err = await errorOf(sandbox.exec("pwd", { workdir: "/etc/hostname" }));
        expect(err.code).toBe(Code.FailedPrecondition);
        expect(err.message).toContain('"/etc/hostname"');
        expect(err.message).toMatch(/not a directory/);
        const below = await errorOf(sandbox.exec("pwd", { workdir: "/etc/hostname/x" }));
        expect([Code.FailedPrecondition, Code.NotFound]).toContain(below.code);
      });

      test("a directory without permission works for root, as on Linux (CAP_DAC_OVERRIDE)", async () => {
        const r = await sandbox.exec("pwd", { workdir: "/noperm" });
        expect(r).toMatchObject({ exitCode: 0, stdoutText: "/noperm\n" });
      });

      test("a workdir through a symlink resolves inside the sandbox, never on the host", async () => {
        await sandbox.exec(
          "sh",
          "-c",
          "mkdir -p /real && ln -sfn /real /link && ln -sfn /etc/hostname /filelink",
        );
        expect((await sandbox.exec("pwd", { workdir: "/link" })).stdoutText).toBe("/real\n");
        // /filelink names the sandbox's /etc/hostname (a file), not the host's.
        expect((await errorOf(sandbox.exec("pwd", { workdir: "/filelink" }))).code).toBe(
          Code.FailedPrecondition,
        );
      });

      test("a missing program is not_found naming the program, by name and by path", async () => {
        for (const program of ["nosuchprog", "/no/such/prog"]) {
          const err = await errorOf(sandbox.exec(program));
          expect(err.code).toBe(Code.NotFound);
          expect(err.message).toContain(JSON.stringify(program));
          expect(err.message).not.toMatch(RUNSC_TEXT);
        }
      });

      test("a file that cannot be executed is failed_precondition naming it", async () => {
        for (const program of ["/notexec", "/etc"]) {
          const err = await errorOf(sandbox.exec(program));
          expect(err.code).toBe(Code.FailedPrecondition);
          expect(err.message).toContain(JSON.stringify(program));
          expect(err.message).not.toMatch(RUNSC_TEXT);
        }
      });

      test("the sandbox keeps working after each of them", async () => {
        expect((await sandbox.exec("echo", "ok")).stdoutText).toBe("ok\n");
      });
    });

    describe("argv and environment are checked against the kernel's limits first", () => {
      const max = EXEC_LIMITS.maxArgStrlen;

      test('env: { BIG: "x".repeat(200 * 1024) } is invalid_argument naming the key and the limit', async () => {
        const err = await errorOf(sandbox.exec("true", { env: { BIG: "x".repeat(200 * 1024) } }));
        expect(err.code).toBe(Code.InvalidArgument);
        expect(err.message).toContain("env.BIG");
        expect(err.message).toContain(String(max));
      });

      test("the exact boundary: NAME=value of max - 1 bytes works and children start, one more byte does not", async () => {
        const value = "y".repeat(max - 1 - "EDGE=".length);
        const r = await sandbox.exec("sh", "-c", 'printf "%s\\n" "$EDGE" | wc -c; sh -c "echo child ran"', {
          env: { EDGE: value },
        });
        expect(r.stdoutText).toBe(`${value.length + 1}\nchild ran\n`);
        const err = await errorOf(sandbox.exec("true", { env: { EDGE: `${value}y` } }));
        expect(err).toMatchObject({ code: Code.InvalidArgument, field: "env.EDGE" });
      });

      test("multi-byte characters count as their UTF-8 bytes", async () => {
        const err = await errorOf(sandbox.exec("true", { env: { U: "é".repeat(max / 2) } }));
        expect(err.code).toBe(Code.InvalidArgument);
      });

      test("an argument over the limit names its index", async () => {
        const err = await errorOf(sandbox.exec("echo", "small", "z".repeat(max)));
        expect(err).toMatchObject({ code: Code.InvalidArgument, field: "argv[2]" });
      });

      test("the total is checked against ARG_MAX with a margin, naming the limit", async () => {
        const env = Object.fromEntries(
          Array.from({ length: 20 }, (_, i) => [`V${i}`, "w".repeat(100 * 1024)]),
        );
        const err = await errorOf(sandbox.exec("true", { env }));
        expect(err.code).toBe(Code.InvalidArgument);
        expect(err.message).toMatch(/ARG_MAX/);
      });
    });

    describe("runsc's own text never reaches a message or the process's stderr", () => {
      test("after an OOM kill the exec reports it and its stderr is the process's own", async () => {
        const small = await rt.runtime.create({
          ...rt.base,
          memory: "128Mi",
          labels: { suite: `exec-${label}` },
        });
        try {
          const r = await small.exec("sh", "-c", "echo before >&2; head -c 600m /dev/zero | tail");
          expect(r).toMatchObject({ exitCode: null, signal: "SIGKILL", oomKilled: true });
          expect(r.stderrText).toBe("before\n");
          expect(r.stderrText).not.toMatch(RUNSC_TEXT);
        } finally {
          await small.stop().catch(() => undefined);
        }
      });

      test("a line that only looks like runsc's is passed on", async () => {
        const r = await sandbox.exec("sh", "-c", 'echo "waiting on pid 1: mine" >&2');
        expect(r.stderrText).toBe("waiting on pid 1: mine\n");
        const own = await sandbox.exec("sh", "-c", 'echo "waiting on pid $$: also mine" >&2');
        expect(own.stderrText).toMatch(/^waiting on pid \d+: also mine\n$/);
      });
    });
  });
}
