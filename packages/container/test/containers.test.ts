/**
 * The seed's Container, end to end through the public SDK against a real server process and real
 * gVisor sandboxes: one describe per seed section.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { ContainerService } from "@chalk/proto/container/v1";
import { createClient } from "@chalk/rpc";
import { SecretStore } from "@chalk/secrets/host";
import { describe, expect } from "vitest";
import { ChalkError, Code, Container, Integrations, Secret, Secrets, Volume } from "../src/index.js";
import { BACKENDS, containerTest, useServer } from "./fixtures.js";

const run = promisify(execFile);
const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;

/** A one-response-at-a-time HTTP server in perl (minbase has perl-base, not python). */
const PERL_HTTP_SERVER = `
use IO::Socket::INET;
my $s = IO::Socket::INET->new(LocalAddr => "0.0.0.0", LocalPort => $ARGV[0], Listen => 16, ReuseAddr => 1) or die "listen: $!";
print "listening\\n"; STDOUT->flush();
while (my $c = $s->accept()) {
  while (my $l = <$c>) { last if $l =~ /^\\r?\\n$/; }
  my $b = "hello from the container\\n";
  print $c "HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: " . length($b) . "\\r\\n\\r\\n$b";
  close $c;
}`;

async function errorOf(p: Promise<unknown>): Promise<ChalkError> {
  try {
    await p;
  } catch (err) {
    return ChalkError.from(err);
  }
  throw new Error("expected an error");
}

// The seed's sections run on every backend (the matrix): the same tests, the same image (Debian
// bookworm minbase: an operator image locally, pushed to the test cluster's registry on Kubernetes).
describe.each(BACKENDS)("on the %s backend", (backend) => {
  // A small volume quota, so that its test can fill a volume without filling the machine.
  const ctx = useServer(["--default-cpu", "750m", "--default-memory", "768Mi", "--volume-quota", "64Mi"], {
    backend,
  });
  const test = containerTest(() => ctx.server);

  describe("configuring resources", () => {
    test("cpu and memory are enforced inside the container", async ({ run }) => {
      const c = await run({ image: ctx.image, name: unique("batch-job"), cpu: "500m", memory: "512Mi" });
      expect(c.info.resources).toMatchObject({ cpuMillis: 500, memoryBytes: 512 * 2 ** 20 });
      const mem = await c.exec("sh", "-c", "grep MemTotal /proc/meminfo");
      const kib = Number(/(\d+)/.exec(mem.stdoutText)?.[1]);
      expect(kib * 1024).toBeLessThanOrEqual(512 * 2 ** 20);
    });

    test("omitted cpu and memory take the environment's defaults", async ({ run }) => {
      const c = await run({ image: ctx.image, name: unique("defaults") });
      expect(c.info.resources).toMatchObject({ cpuMillis: 750, memoryBytes: 768 * 2 ** 20 });
    });

    test("a GPU on this machine is refused with failed_precondition before anything starts", async () => {
      const name = unique("gpu-job");
      const err = await errorOf(
        new Container({
          image: ctx.image,
          name,
          gpu: "nvidia-l4:1",
          transport: ctx.server.transport(),
        }).run(),
      );
      expect(err.code).toBe(Code.FailedPrecondition);
      expect(err.message).toMatch(/no GPU/);
      await expect(Container.fromName(name, { transport: ctx.server.transport() })).rejects.toMatchObject({
        code: Code.NotFound,
      });
    });
  });

  describe("environment variables and secrets", () => {
    test("env, a managed secret, an integration and a local-env secret reach the container", async ({
      run,
    }) => {
      const t = ctx.server.transport();
      await Secrets.set("OPENAI_API_KEY", "sk-test-value-1", { transport: t });
      await Integrations.set(
        "prod_postgres",
        { PGHOST: "db.internal", PGPASSWORD: "pw-test" },
        { transport: t },
      );
      const local = Secret.fromLocalEnv("RUN_TOKEN", { env: { RUN_TOKEN: "local-token-value" } });
      const c = await run({
        image: ctx.image,
        name: unique("api-client"),
        env: { LOG_LEVEL: "INFO" },
        secrets: [Secret.fromEnv("OPENAI_API_KEY"), Secret.fromIntegration("prod_postgres"), local],
      });
      const r = await c.exec(
        "sh",
        "-c",
        'printf "%s|%s|%s|%s|%s" "$LOG_LEVEL" "$OPENAI_API_KEY" "$PGHOST" "$PGPASSWORD" "$RUN_TOKEN"',
      );
      expect(r.stdoutText).toBe("INFO|sk-test-value-1|db.internal|pw-test|local-token-value");
      // The record shows references, never values, and the server's logs hold none of them.
      expect(JSON.stringify(c.info)).not.toContain("sk-test-value-1");
      await c.stop();
      const logs = ctx.server.logs.join("\n");
      for (const value of ["sk-test-value-1", "pw-test", "local-token-value"])
        expect(logs).not.toContain(value);
    });

    test("a local-env secret is gone from the store after stop()", async ({ run }) => {
      const c = await run({
        image: ctx.image,
        name: unique("local-secret"),
        secrets: [Secret.fromLocalEnv("ONE_RUN", { env: { ONE_RUN: "only-for-this-run" } })],
      });
      expect((await c.exec("sh", "-c", 'echo "$ONE_RUN"')).stdoutText.trim()).toBe("only-for-this-run");
      const store = await SecretStore.open({ path: join(ctx.server.dataDir, "secrets.db") });
      try {
        expect(store.listTemporary("default", c.id)).toEqual(["ONE_RUN"]);
        await c.stop();
        expect(store.listTemporary("default", c.id)).toEqual([]);
      } finally {
        store.close();
      }
    });

    test("a missing secret stops the container from starting, with an error naming it", async () => {
      const name = unique("no-secret");
      const err = await errorOf(
        new Container({
          image: ctx.image,
          name,
          secrets: [Secret.fromEnv("NOT_THERE")],
          transport: ctx.server.transport(),
        }).run(),
      );
      expect(err.code).toBe(Code.NotFound);
      expect(err.message).toContain("NOT_THERE");
      await expect(Container.fromName(name, { transport: ctx.server.transport() })).rejects.toMatchObject({
        code: Code.NotFound,
      });
    });
  });

  describe("mounting volumes", () => {
    test("a file put into a volume is read inside, and what one container writes another reads", async ({
      run,
    }) => {
      const t = ctx.server.transport();
      const vol = new Volume("training-data", { transport: t });
      await vol.putFile("inputs/example.txt", "hello\n");
      const a = await run({
        image: ctx.image,
        name: unique("trainer"),
        volumes: [["training-data", "/data"]],
      });
      expect((await a.exec("cat", "/data/inputs/example.txt")).stdoutText).toBe("hello\n");
      await a.exec("sh", "-c", "echo from-a > /data/written-by-a.txt");
      await a.stop();
      const b = await run({
        image: ctx.image,
        name: unique("reader"),
        volumes: [["training-data", "/mnt/shared"]],
      });
      expect((await b.exec("cat", "/mnt/shared/written-by-a.txt")).stdoutText).toBe("from-a\n");
      expect(new TextDecoder().decode(await vol.readFile("written-by-a.txt"))).toBe("from-a\n");
    });

    test("a volume holds at most the server's --volume-quota: a write past it is ENOSPC inside, and a put is resource_exhausted", async ({
      run,
    }) => {
      const name = unique("quota");
      const vol = new Volume(name, { transport: ctx.server.transport() });
      await vol.create();
      const c = await run({ image: ctx.image, name: unique("filler"), volumes: [[name, "/q"]] });
      const fill = await c.exec("sh", "-c", "dd if=/dev/zero of=/q/big bs=1M count=100 2>&1; echo rc=$?");
      expect(fill.stdoutText).toMatch(/No space left on device/);
      expect(fill.stdoutText).not.toMatch(/rc=0/);
      // The container's view of the volume is the quota's file system, not the host's.
      const df = await c.exec("sh", "-c", "df -k /q | tail -1");
      const sizeKiB = Number(df.stdoutText.trim().split(/\s+/)[1]);
      expect(sizeKiB).toBeLessThanOrEqual(64 * 1024);
      await c.exec("rm", "-f", "/q/big");
      await expect(vol.putFile("big.bin", new Uint8Array(100 * 1024 * 1024))).rejects.toMatchObject({
        code: Code.ResourceExhausted,
      });
    });
  });

  describe("executing commands", () => {
    test("exec returns stdout, stderr and the exit code; stdin reaches the command", async ({ run }) => {
      const c = await run({ image: ctx.image, name: unique("exec") });
      const cat = await c.exec("cat", "/etc/debian_version");
      expect(cat.exitCode).toBe(0);
      expect(cat.stdoutText).toMatch(/^12\./);
      const fail = await c.exec("sh", "-c", "echo out; echo err >&2; exit 3");
      expect(fail).toMatchObject({ stdoutText: "out\n", stderrText: "err\n", exitCode: 3 });
      expect((await c.exec("cat", { stdin: "piped\n" })).stdoutText).toBe("piped\n");
    });

    test("a timeout kills the command and throws deadline_exceeded", async ({ run }) => {
      const c = await run({ image: ctx.image, name: unique("timeout") });
      const err = await errorOf(c.exec("sh", "-c", "echo partial; sleep 30", { timeoutSecs: 1 }));
      expect(err.code).toBe(Code.DeadlineExceeded);
      expect(err.details.stdout).toBe("partial\n");
    });

    test("the sandbox underneath streams output, takes stdin and signals", async ({ run }) => {
      const c = await run({ image: ctx.image, name: unique("sandbox") });
      const proc = await c.sandbox.spawn([
        "sh",
        "-c",
        "trap 'echo term; exit 7' TERM; read x; echo got $x; sleep 30 & wait",
      ]);
      await proc.stdin.write("hello\n");
      const chunks: string[] = [];
      const reading = (async () => {
        for await (const chunk of proc.stdout) chunks.push(Buffer.from(chunk).toString());
      })();
      while (!chunks.join("").includes("got hello")) await new Promise((r) => setTimeout(r, 50));
      await proc.signal("SIGTERM");
      expect(await proc.wait()).toMatchObject({ exitCode: 7 });
      await reading;
      expect(chunks.join("")).toBe("got hello\nterm\n");
    });
    test("a PTY: the command sees a terminal of the asked size, a resize reaches it, output and input go through it", async ({
      run,
    }) => {
      const c = await run({ image: ctx.image, name: unique("pty") });
      const proc = await c.sandbox.spawn(
        [
          "sh",
          "-c",
          '[ -t 0 ] && [ -t 1 ] && echo on-a-tty; stty size; while read x; do stty size; [ "$x" = q ] && exit 5; done',
        ],
        { pty: { cols: 80, rows: 24 } },
      );
      let out = "";
      const reading = (async () => {
        for await (const chunk of proc.stdout) out += Buffer.from(chunk).toString();
      })();
      let errBytes = 0;
      const readingErr = (async () => {
        for await (const chunk of proc.stderr) errBytes += Buffer.from(chunk).length;
      })();
      const waitFor = async (re: RegExp) => {
        for (let i = 0; i < 200 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
        return re.test(out);
      };
      expect(await waitFor(/on-a-tty\r\n24 80\r\n/)).toBe(true);
      await proc.resize(100, 40);
      // The resize and the next line travel on separate channels: ask again until the size shows.
      let resized = false;
      for (let i = 0; i < 20 && !resized; i++) {
        await proc.stdin.write("again\n");
        resized = await waitFor(/40 100\r\n/);
      }
      expect(resized).toBe(true);
      await proc.stdin.write("q\n");
      expect(await proc.wait()).toMatchObject({ exitCode: 5, signal: null });
      await Promise.all([reading, readingErr]);
      // The terminal echoes input, and turns "\n" into "\r\n" (stderr is the terminal too).
      expect(out).toContain("again\r\n");
      expect(errBytes).toBe(0);
    });
  });

  describe("exposing a port", () => {
    test("a port served inside the container answers an HTTP request from the host", async ({ run }) => {
      const c = await run({
        image: ctx.image,
        name: unique("api"),
        port: 8080,
        entrypoint: ["perl", "-e", PERL_HTTP_SERVER, "8080"],
      });
      expect(c.info.address).toMatch(/^\d+\.\d+\.\d+\.\d+:8080$/);
      let body = "";
      const deadline = Date.now() + 30_000;
      while (!body && Date.now() < deadline) {
        body = await fetch(`http://${c.info.address}/`, { signal: AbortSignal.timeout(1000) }).then(
          (r) => r.text(),
          () => new Promise<string>((resolve) => setTimeout(() => resolve(""), 200)),
        );
      }
      expect(body).toBe("hello from the container\n");
    });
  });

  describe("lifecycle", () => {
    test("a second OS process reattaches by name and by id and execs", async ({ run }) => {
      const name = unique("long-lived");
      const c = await run({ image: ctx.image, name });
      const script = `
        import { Container } from "@chalk/container";
        const byName = await Container.fromName(${JSON.stringify(name)});
        const byId = await Container.fromId(${JSON.stringify(c.id)});
        const r = await byId.exec("echo", "from", "elsewhere");
        console.log(JSON.stringify({ id: byName.id, status: byName.info.status, out: r.stdoutText }));
      `;
      const { stdout } = await run2(script);
      expect(JSON.parse(stdout)).toEqual({ id: c.id, status: "Running", out: "from elsewhere\n" });
    });

    test("a taken name fails with already_exists and leaves the existing container alone", async ({
      run,
    }) => {
      const name = unique("taken");
      const first = await run({ image: ctx.image, name });
      const err = await errorOf(
        new Container({ image: ctx.image, name, transport: ctx.server.transport() }).run(),
      );
      expect(err.code).toBe(Code.AlreadyExists);
      await first.refresh();
      expect(first.info.status).toBe("Running");
      expect((await first.exec("true")).exitCode).toBe(0);
    });

    test("the entrypoint's exit sets Succeeded or Failed with the exit code, and its output is the log", async ({
      run,
    }) => {
      // Entrypoints that end at once: run() reports their real outcome, not Running.
      const ok = await run({ image: ctx.image, name: unique("ok"), entrypoint: ["sh", "-c", "echo done"] });
      expect(ok.info).toMatchObject({ status: "Succeeded", exitCode: 0 });
      const badName = unique("bad");
      const err = await errorOf(
        run({ image: ctx.image, name: badName, entrypoint: ["sh", "-c", "echo failing >&2; exit 3"] }),
      );
      expect(err.code).toBe(Code.FailedPrecondition);
      expect(err.message).toMatch(/is Failed: the entrypoint exited with code 3/);
      const bad = await Container.fromName(badName, { transport: ctx.server.transport() });
      expect(bad.info).toMatchObject({
        status: "Failed",
        exitCode: 3,
        statusMessage: expect.stringContaining("code 3"),
      });
      expect(bad.info.stoppedAt).toBeInstanceOf(Date);
      expect(await ok.logs()).toBe("done\n");
      expect(await bad.logs()).toBe("failing\n");
    });

    test("orphans of the entrypoint and of execs are reaped: no zombie stays in /proc", async ({ run }) => {
      // The entrypoint execs into a process that never waits, after leaving an orphan behind: only a
      // reaping PID 1 (tini locally, the Pod's pause process on Kubernetes) collects it.
      const c = await run({
        image: ctx.image,
        name: unique("reaper"),
        entrypoint: ["sh", "-c", "(sleep 0.2 &); exec sleep 3600"],
      });
      expect((await c.exec("sh", "-c", "(sleep 0.2 &); (sleep 0.3 &); true")).exitCode).toBe(0);
      const zombies = async () =>
        (
          await c.exec(
            "sh",
            "-c",
            'for f in /proc/[0-9]*/status; do grep -q "^State:.*Z" "$f" && echo "$f"; done; true',
          )
        ).stdoutText;
      const processes = (await c.exec("sh", "-c", "ls -d /proc/[0-9]* | wc -l")).stdoutText;
      expect(Number(processes)).toBeGreaterThan(1);
      let left = await zombies();
      for (let i = 0; i < 40 && left !== ""; i++) {
        await new Promise((r) => setTimeout(r, 250));
        left = await zombies();
      }
      expect(left).toBe("");
      await c.refresh();
      expect(c.info.status).toBe("Running");
    });

    test("stop with a grace period gives the entrypoint its SIGTERM first; logs follow until it ends", async ({
      run,
    }) => {
      const c = await run({
        image: ctx.image,
        name: unique("graceful"),
        entrypoint: [
          "sh",
          "-c",
          "trap 'echo got SIGTERM; exit 0' TERM; echo started; while :; do sleep 0.1; done",
        ],
      });
      const followed: string[] = [];
      const following = (async () => {
        for await (const text of c.logs({ follow: true })) followed.push(text);
      })();
      while (!followed.join("").includes("started")) await new Promise((r) => setTimeout(r, 50));
      await c.stop({ gracePeriodSeconds: 10 });
      await following;
      expect(c.info.status).toBe("Stopped");
      // (sh may also report its interrupted `sleep` as "Terminated".)
      expect(followed.join("")).toMatch(/^started\n(Terminated\n)?got SIGTERM\n$/);
      expect(await c.logs()).toBe(followed.join(""));
    });

    test("one environment cannot see, exec in or stop another's containers", async ({ run }) => {
      const name = unique("private");
      const mine = await run({ image: ctx.image, name }, "team-a");
      const other = { transport: ctx.server.transport("team-b") };
      await expect(Container.fromName(name, other)).rejects.toMatchObject({ code: Code.NotFound });
      await expect(Container.fromId(mine.id, other)).rejects.toMatchObject({ code: Code.NotFound });
      const raw = createClient(ContainerService, ctx.server.transport("team-b"));
      await expect(
        raw.execContainer({ ref: { case: "id", value: mine.id }, command: ["true"] }),
      ).rejects.toMatchObject({
        code: Code.NotFound,
      });
      await expect(raw.stopContainer({ ref: { case: "id", value: mine.id } })).rejects.toMatchObject({
        code: Code.NotFound,
      });
      await mine.refresh();
      expect(mine.info.status).toBe("Running");
    });
  });

  async function run2(script: string): Promise<{ stdout: string }> {
    return run(
      process.execPath,
      ["--import", "tsx", "--conditions=@chalk/source", "--input-type=module", "-e", script],
      {
        cwd: join(import.meta.dirname, ".."),
        env: { ...process.env, ...ctx.server.env },
      },
    );
  }
});
