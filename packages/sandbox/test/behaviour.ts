import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { ChalkError, Code } from "@chalk/core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Sandbox, SandboxCreateOptions, SandboxRuntime } from "../src/index.js";

/** A runtime under test: the in-process one, or a gRPC client of a server around it. */
export interface RuntimeUnderTest {
  runtime: SandboxRuntime;
  /** What every sandbox of the suite runs: the test root filesystem, or the image a server serves it as. */
  base: Pick<SandboxCreateOptions, "rootfs" | "image">;
  /** A base that does not exist (not_found naming it). */
  missing: Pick<SandboxCreateOptions, "rootfs" | "image">;
  close(): Promise<void>;
}

/** The cached test root filesystem (debootstrap minbase), built on first use. */
export function testRootfs(): string {
  return execFileSync("bash", [join(import.meta.dirname, "../../../tooling/scripts/rootfs.sh")], {
    encoding: "utf8",
  }).trim();
}

/** Reads a stream to the end as text. */
export async function text(stream: AsyncIterable<Uint8Array>): Promise<string> {
  let s = "";
  for await (const chunk of stream) s += Buffer.from(chunk).toString("utf8");
  return s;
}

/** Reads a whole stream in the background; `until` resolves once a pattern has appeared. */
export function collector(stream: AsyncIterable<Uint8Array>) {
  let seen = "";
  const waiters: { pattern: string; resolve: () => void }[] = [];
  const done = (async () => {
    for await (const chunk of stream) {
      seen += Buffer.from(chunk).toString("utf8");
      for (const w of waiters.filter((w) => seen.includes(w.pattern))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
    return seen;
  })();
  return {
    /** Everything read so far. */
    get text() {
      return seen;
    },
    /** Resolves once `pattern` has been read; rejects if the stream ends first. */
    until(pattern: string): Promise<void> {
      if (seen.includes(pattern)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        waiters.push({ pattern, resolve });
        done.then(
          () =>
            reject(
              new Error(
                `stream ended before ${JSON.stringify(pattern)}; got ${JSON.stringify(seen.slice(-200))}`,
              ),
            ),
          reject,
        );
      });
    },
    /** Resolves with the whole text at the end of the stream. */
    done,
  };
}

/** The ChalkError a call fails with (the test fails when the call succeeds). */
export async function errorOf(p: Promise<unknown>): Promise<ChalkError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ChalkError);
    return err as ChalkError;
  }
  throw new Error("expected the call to fail");
}

/**
 * The behaviour every {@link SandboxRuntime} must show, registered as vitest tests. The same
 * suite runs against the in-process runtime and against the gRPC client.
 */
export function sandboxBehaviour(label: string, setup: () => Promise<RuntimeUnderTest>): void {
  describe(`sandbox behaviour (${label})`, () => {
    let rt: RuntimeUnderTest;
    let shared: Sandbox;
    const made: Sandbox[] = [];

    /** Creates a sandbox that is stopped after the suite, also when a test fails. */
    async function create(options: Partial<SandboxCreateOptions> = {}): Promise<Sandbox> {
      const sandbox = await rt.runtime.create({ ...rt.base, labels: { suite: label }, ...options });
      made.push(sandbox);
      return sandbox;
    }

    beforeAll(async () => {
      rt = await setup();
      shared = await create({ memory: "512Mi", cpu: "1" });
    });

    afterAll(async () => {
      for (const s of made) {
        await s.stop().catch((err) => {
          if (ChalkError.from(err).code !== Code.NotFound)
            console.error(`could not stop sandbox ${s.id}:`, err);
        });
      }
      await rt?.close();
    });

    test("stdin round trip: bytes reach the process and EOF ends its input", async () => {
      const proc = await shared.spawn(["sh", "-c", "cat; echo EOF-seen >&2"]);
      const out = text(proc.stdout);
      const err = text(proc.stderr);
      await proc.stdin.write("first line\n");
      await proc.stdin.write(new Uint8Array([0x68, 0x69, 0x0a]));
      await proc.stdin.end();
      expect(await out).toBe("first line\nhi\n");
      expect(await err).toBe("EOF-seen\n");
      expect(await proc.wait()).toMatchObject({ exitCode: 0, signal: null });
    });

    test("one stdin write larger than a message (20 MiB) reaches the process whole", async () => {
      const proc = await shared.spawn(["sh", "-c", "wc -c"]);
      const out = text(proc.stdout);
      const data = new Uint8Array(20 * 1024 * 1024).fill(0x61);
      await proc.stdin.write(data);
      await proc.stdin.end();
      expect((await out).trim()).toBe(String(data.byteLength));
      expect(await proc.wait()).toMatchObject({ exitCode: 0 });
    });

    test("exit codes 0, 3 and 137 are reported as exit codes", async () => {
      for (const code of [0, 3, 137]) {
        const r = await shared.exec("sh", "-c", `exit ${code}`);
        expect(r.exitCode).toBe(code);
        expect(r.signal).toBeNull();
      }
    });

    test("a process killed by a signal from inside the sandbox is reported as that signal", async () => {
      expect(await shared.exec("sh", "-c", "kill -KILL $$")).toMatchObject({
        exitCode: null,
        signal: "SIGKILL",
      });
      expect(await shared.exec("sh", "-c", "kill -TERM $$")).toMatchObject({
        exitCode: null,
        signal: "SIGTERM",
      });
    });

    test("exec buffers stdout and stderr apart and honours env and workdir", async () => {
      const r = await shared.exec("sh", "-c", 'echo "$GREETING from $(pwd)"; echo oops >&2', {
        env: { GREETING: "hello" },
        workdir: "/tmp",
      });
      expect(r.stdoutText).toBe("hello from /tmp\n");
      expect(r.stderrText).toBe("oops\n");
      expect(r.stdout).toBeInstanceOf(Uint8Array);
    });

    test("a trap inside the sandbox receives SIGTERM", async () => {
      const proc = await shared.spawn([
        "sh",
        "-c",
        "trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done",
      ]);
      const out = collector(proc.stdout);
      void text(proc.stderr);
      await out.until("ready");
      await proc.signal("SIGTERM");
      expect(await out.done).toContain("got TERM");
      expect(await proc.wait()).toMatchObject({ exitCode: 0, signal: null });
    });

    test("a signal reaches the process group, children included", async () => {
      const proc = await shared.spawn([
        "sh",
        "-c",
        `sh -c 'trap "echo child got TERM; exit 0" TERM; echo child ready; while :; do sleep 0.1; done' & wait`,
      ]);
      const out = collector(proc.stdout);
      void text(proc.stderr);
      await out.until("child ready");
      await proc.signal(15);
      expect(await out.done).toContain("child got TERM");
      await proc.wait();
    });

    test("SIGKILL ends a process and is reported as the signal", async () => {
      const proc = await shared.spawn(["sleep", "30"]);
      await proc.signal("KILL");
      expect(await proc.wait()).toEqual({
        exitCode: null,
        signal: "SIGKILL",
        timedOut: false,
        oomKilled: false,
      });
    });

    test("exec timeout kills the process and says so", async () => {
      const err = await errorOf(shared.exec("sh", "-c", "echo started; sleep 30", { timeoutSecs: 1 }));
      expect(err.code).toBe(Code.DeadlineExceeded);
      expect(err.message).toMatch(/timed out after 1s/);
      expect(err.details.stdout).toBe("started\n");
      const proc = await shared.spawn(["sleep", "30"], { timeoutSecs: 0.5 });
      expect(await proc.wait()).toMatchObject({ exitCode: null, signal: "SIGKILL", timedOut: true });
    });

    test("64 MiB of stdout read slowly: the writer waits for the reader and host memory stays bounded", async () => {
      const total = 64 * 1024 * 1024;
      // Collect garbage before each sample, so the figure is what is held, not what awaits collection.
      setFlagsFromString("--expose-gc");
      const gc = runInNewContext("gc") as () => void;
      const held = () => {
        gc();
        const m = process.memoryUsage();
        return m.heapUsed + m.arrayBuffers;
      };
      const proc = await shared.spawn(["head", "-c", String(total), "/dev/zero"]);
      const before = held();
      let peak = before;
      let received = 0;
      let chunks = 0;
      for await (const chunk of proc.stdout) {
        received += chunk.length;
        // A slow consumer: if output were buffered without bound, it would pile up in this process.
        await sleep(1);
        if (++chunks % 64 === 0) peak = Math.max(peak, held());
      }
      expect(received).toBe(total);
      expect(await proc.wait()).toMatchObject({ exitCode: 0 });
      const growthMiB = (peak - before) / 2 ** 20;
      console.log(
        `[${label}] 64 MiB read slowly: memory held by this process grew by ${growthMiB.toFixed(1)} MiB at most`,
      );
      // Buffering the output would hold all 64 MiB; what is in flight (pipes, stream buffers, and
      // through gRPC the HTTP/2 queues of both ends in this one process) holds a fraction of it.
      expect(growthMiB).toBeLessThan(32);
    });

    test("a stalled reader stalls the process inside", async () => {
      const proc = await shared.spawn([
        "bash",
        "-c",
        // Builtins only (no process per block), so the unblocked run takes a moment, not a minute.
        'b=$(printf "%01024d" 0); for ((i = 1; i <= 4000; i++)); do printf "%s" "$b"; echo $i > /tmp/progress; done',
      ]);
      // Read nothing for a while: the process must block on its full pipe, far short of 4000 KiB.
      await sleep(1500);
      const progress = Number((await shared.exec("cat", "/tmp/progress")).stdoutText.trim() || 0);
      expect(progress).toBeLessThan(4000);
      let received = 0;
      for await (const chunk of proc.stdout) received += chunk.length;
      expect(received).toBe(4000 * 1024);
      await proc.wait();
    });

    test("ls -la, stat and find -newer work (the seed's own exec example)", async () => {
      await shared.exec(
        "sh",
        "-c",
        "mkdir -p /tmp/seed && printf 12345 > /tmp/seed/five && touch -d 2020-01-01 /tmp/seed/old",
      );
      const ls = await shared.exec("ls", "-la", "/tmp/seed");
      expect(ls).toMatchObject({ exitCode: 0, stderrText: "" });
      expect(ls.stdoutText).toMatch(/^total \d+\n/);
      expect(ls.stdoutText).toMatch(/^drwx[rwx-]{6} +\d+ root root +\d+ .* \.\n/m);
      expect(ls.stdoutText).toMatch(/^-rw-r--r-- +1 root root +5 .* five\n/m);
      expect(ls.stdoutText).toMatch(/^-rw-r--r-- +1 root root +0 +Jan +1 +2020 old\n/m);
      expect((await shared.exec("ls", "-la", "/")).stdoutText).toMatch(/ etc\n/);
      const stat = await shared.exec("stat", "-c", "%F %a %U %s", "/etc/passwd", "/tmp/seed/five");
      expect(stat).toMatchObject({ exitCode: 0, stderrText: "" });
      expect(stat.stdoutText).toMatch(/^regular file 644 root [1-9]\d*\nregular file 644 root 5\n$/);
      const find = await shared.exec("find", "/tmp/seed", "-newer", "/tmp/seed/old");
      expect(find).toMatchObject({ exitCode: 0, stderrText: "" });
      expect(find.stdoutText.split("\n").sort()).toEqual(["", "/tmp/seed", "/tmp/seed/five"]);
    });

    test("a PTY reports its size and follows resize, in a root filesystem without python", async () => {
      // The relay is a static helper on the host: the image needs nothing (this one has no python).
      expect((await shared.exec("sh", "-c", "command -v python3 python || echo none")).stdoutText).toBe(
        "none\n",
      );
      const proc = await shared.spawn(["sh", "-c", "stty size; read x; stty size"], {
        pty: { cols: 100, rows: 30 },
      });
      const out = collector(proc.stdout);
      await out.until("30 100");
      await proc.resize(120, 40);
      await proc.stdin.write("\n");
      expect(await out.done).toMatch(/30 100[\s\S]*40 120/);
      expect(await proc.wait()).toMatchObject({ exitCode: 0 });
    });

    test("the memory limit is what the sandbox sees, and overuse is an OOM kill reported as such", async () => {
      const sandbox = await create({ memory: "256Mi" });
      const meminfo = await sandbox.exec("grep", "MemTotal", "/proc/meminfo");
      expect(meminfo.stdoutText).toMatch(/MemTotal:\s+262144 kB/);
      const proc = await sandbox.spawn(["sh", "-c", "head -c 2G /dev/zero | tail > /dev/null"]);
      const exit = await proc.wait();
      expect(exit.oomKilled).toBe(true);
      expect(exit.exitCode).toBeNull();
    });

    test("a fork bomb is contained by the pids limit while the host stays responsive", async () => {
      const sandbox = await create({ pids: 64, memory: "1Gi" });
      const bomb = await sandbox.spawn(["sh", "-c", "f() { f | f & }; f; sleep 3"], { timeoutSecs: 6 });
      await sleep(1000);
      // The host still starts processes and answers while the bomb runs.
      const started = performance.now();
      expect(spawnSync("/bin/true").status).toBe(0);
      console.log(
        `[${label}] host spawned a process in ${(performance.now() - started).toFixed(0)} ms during the fork bomb`,
      );
      const inside = await sandbox
        .exec("sh", "-c", "ls -d /proc/[0-9]* | wc -l")
        .catch((e) => e as ChalkError);
      if (!(inside instanceof ChalkError)) expect(Number(inside.stdoutText.trim())).toBeLessThanOrEqual(70);
      // The bomb's processes outlive its leader and hold its stdout open (as on Linux, output ends
      // when the last writer closes it): end them all, then the exec reports its end.
      await sandbox.signal("SIGKILL").catch(() => undefined);
      await bomb.wait();
      expect((await sandbox.info()).state).not.toBe("created");
      // The bomb stayed in its sandbox: another sandbox works as before.
      expect((await shared.exec("echo", "alive")).stdoutText).toBe("alive\n");
    });

    test("stop with a grace period gives the init process SIGTERM first", async () => {
      const sandbox = await create({
        command: ["sh", "-c", "trap 'exit 42' TERM; touch /tmp/init-up; while :; do sleep 0.1; done"],
      });
      for (let i = 0; i < 50 && (await sandbox.exec("test", "-e", "/tmp/init-up")).exitCode !== 0; i++)
        await sleep(100);
      const ended = sandbox.wait();
      await sandbox.stop({ gracePeriodSeconds: 5 });
      // The trap ran: the init ended with its own exit code, not by SIGKILL.
      expect(await ended).toMatchObject({ exitCode: 42, signal: null });
      expect((await errorOf(sandbox.info())).code).toBe(Code.NotFound);
    });

    test("wait() reports how the init process ended", async () => {
      const sandbox = await create({ command: ["sh", "-c", "exit 4"] });
      expect(await sandbox.wait()).toMatchObject({ exitCode: 4 });
    });

    test("list and info show the sandbox with its labels and limits", async () => {
      const info = await shared.info();
      expect(info).toMatchObject({ id: shared.id, state: "running", labels: { suite: label } });
      expect(info.resources.memory).toBe("512Mi");
      const listed = await rt.runtime.list({ labels: { suite: label } });
      expect(listed.map((i) => i.id)).toContain(shared.id);
      expect(await rt.runtime.list({ labels: { suite: "no-such-suite" } })).toEqual([]);
      expect((await rt.runtime.get(shared.id)).id).toBe(shared.id);
    });

    describe("bad input gets a typed error before any work", () => {
      test("a malformed memory string names the field and the accepted forms", async () => {
        const err = await errorOf(rt.runtime.create({ ...rt.base, memory: "2 gigs" }));
        expect(err.code).toBe(Code.InvalidArgument);
        expect(err.message).toMatch(/memory: .*accepted: .*Mi/);
      });

      test("a malformed cpu string names the field", async () => {
        const err = await errorOf(rt.runtime.create({ ...rt.base, cpu: "lots" }));
        expect(err.code).toBe(Code.InvalidArgument);
        expect(err.message).toMatch(/cpu: .*500m/);
      });

      test("an image or a root filesystem that does not exist", async () => {
        const err = await errorOf(rt.runtime.create(rt.missing));
        expect(err.code).toBe(Code.NotFound);
        expect(err.message).toMatch(/rootfs|image/);
      });

      test("an unknown sandbox id", async () => {
        expect((await errorOf(rt.runtime.get("sb-does-not-exist"))).code).toBe(Code.NotFound);
      });

      test("exec in a sandbox whose init has ended", async () => {
        const sandbox = await create({ command: ["true"] });
        await sandbox.wait();
        const err = await errorOf(sandbox.exec("echo", "hi"));
        expect([Code.FailedPrecondition, Code.NotFound]).toContain(err.code);
      });

      test("exec after stop", async () => {
        const sandbox = await create();
        await sandbox.stop();
        expect((await errorOf(sandbox.exec("echo", "hi"))).code).toBe(Code.NotFound);
      });

      test("an empty command, a bad signal and a program that does not exist", async () => {
        expect((await errorOf(shared.exec())).code).toBe(Code.InvalidArgument);
        const proc = await shared.spawn(["sleep", "5"]);
        expect((await errorOf(proc.signal("SIGNOPE"))).code).toBe(Code.InvalidArgument);
        await proc.signal("KILL");
        await proc.wait();
        const err = await errorOf(shared.exec("/no/such/program"));
        expect([Code.NotFound, Code.InvalidArgument, Code.FailedPrecondition, Code.Internal]).toContain(
          err.code,
        );
        expect(err.message).toContain("/no/such/program");
      });
    });
  });
}
