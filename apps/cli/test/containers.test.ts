/**
 * `chalk run`, `exec`, `logs`, `ps`, `inspect` and `stop` as a user runs them: the built binary
 * against a real server and gVisor, checking output, JSON and exit codes (docker's 125/126/127 for
 * chalk's own failures in exec and run -- CMD, 1 and 2 elsewhere).
 */
import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Integrations } from "@chalk/container";
import { describe, expect, test } from "vitest";
import { CHALK } from "./cli.js";
import { oneErrorLine, TEST_IMAGE, uniqueName, useCli } from "./fixtures.js";

const cli = useCli();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The keys of a container in `-o json` and `inspect`: a stable contract. */
const CONTAINER_KEYS = [
  "id",
  "name",
  "status",
  "statusMessage",
  "createdAt",
  "stoppedAt",
  "exitCode",
  "image",
  "resources",
  "address",
  "port",
  "entrypoint",
  "env",
  "secrets",
  "volumes",
  "sandboxId",
];

async function started(args: string[] = []): Promise<string> {
  const name = uniqueName("c");
  const r = await cli.chalk(["run", TEST_IMAGE, "--name", name, "--detach", ...args]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout.trim()).toMatch(UUID);
  return name;
}

async function inspect(name: string): Promise<Record<string, unknown>> {
  const r = await cli.chalk(["inspect", name]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

async function until(
  name: string,
  pred: (c: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  for (let i = 0; i < 600; i++) {
    const c = await inspect(name);
    if (pred(c)) return c;
    await sleep(200);
  }
  throw new Error(`container ${name} never reached the state`);
}

describe("chalk run --detach, ps, inspect", () => {
  test("run --detach prints only the id on stdout; ps lists the container; inspect and ps -o json agree", async () => {
    const name = uniqueName("web");
    const r = await cli.chalk([
      "run",
      TEST_IMAGE,
      "--name",
      name,
      "--detach",
      "--cpu",
      "500m",
      "--memory",
      "256Mi",
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${UUID.source.slice(1, -1)}\n$`));
    expect(r.stderr).toContain(`${name} is Running`);
    const id = r.stdout.trim();

    const ps = await cli.chalk(["ps"]);
    expect(ps.code).toBe(0);
    const header = ps.stdout.split("\n")[0]!;
    expect(header.split(/\s+/)).toEqual(["NAME", "ID", "STATUS", "CREATED", "ADDRESS", "IMAGE"]);
    expect(ps.stdout).toMatch(new RegExp(`^${name}\\s+${id.slice(0, 12)}\\s+Running`, "m"));
    expect(ps.stdout).not.toContain("\u001b["); // no colour on a pipe

    const wide = await cli.chalk(["ps", "-o", "wide"]);
    expect(wide.stdout.split("\n")[0]!.split(/\s+/)).toEqual([
      "NAME",
      "ID",
      "STATUS",
      "CREATED",
      "ADDRESS",
      "IMAGE",
      "CPU",
      "MEMORY",
      "ENTRYPOINT",
      "MESSAGE",
    ]);
    expect(wide.stdout).toMatch(new RegExp(`^${name}\\s.*500m\\s+256\\.0 MiB`, "m"));

    const json = await cli.chalk(["ps", "-o", "json"]);
    const list = JSON.parse(json.stdout) as Record<string, unknown>[];
    const mine = list.find((c) => c.name === name)!;
    expect(Object.keys(mine)).toEqual(CONTAINER_KEYS);
    expect(mine).toMatchObject({
      id,
      status: "Running",
      stoppedAt: null,
      exitCode: null,
      resources: { cpuMillis: 500, memoryBytes: 256 * 2 ** 20, gpu: null },
    });
    expect(new Date(mine.createdAt as string).toISOString()).toBe(mine.createdAt);
    expect(await inspect(name)).toEqual(mine);
    expect(await inspect(id)).toEqual(mine);
  });

  test("run --detach -o json carries env, secret references (never values), volumes and the port", async () => {
    const secret = uniqueName("S").toUpperCase().replace(/-/g, "_");
    expect((await cli.chalk(["secret", "set", secret], { input: "managed-value-7d1\n" })).code).toBe(0);
    const vol = uniqueName("vol");
    const local = join(cli.dir, "hello.txt");
    await writeFile(local, "from the volume\n");
    expect((await cli.chalk(["volume", "put", vol, local])).code).toBe(0);
    const name = uniqueName("full");
    const r = await cli.chalk(
      [
        "run",
        TEST_IMAGE,
        "--name",
        name,
        "--detach",
        "-o",
        "json",
        "-e",
        "PLAIN=1",
        "-e",
        "FROM_HERE",
        "--secret",
        secret,
        "--secret-from-local-env",
        "LOCAL_SECRET",
        "-v",
        `${vol}:/data`,
        "-p",
        "8080",
      ],
      { env: { FROM_HERE: "copied", LOCAL_SECRET: "local-value-9e2" } },
    );
    expect(r.code, r.stderr).toBe(0);
    const c = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(c)).toEqual(CONTAINER_KEYS);
    expect(c).toMatchObject({
      name,
      status: "Running",
      env: { PLAIN: "1", FROM_HERE: "copied" },
      secrets: [
        { kind: "secret", name: secret },
        { kind: "localEnv", name: "LOCAL_SECRET" },
      ],
      volumes: [{ name: vol, mountPath: "/data", readOnly: false }],
      port: 8080,
    });
    expect(c.address).toMatch(/^\d+\.\d+\.\d+\.\d+:8080$/);
    for (const out of [r.stdout, r.stderr, JSON.stringify(await inspect(name))]) {
      expect(out).not.toContain("managed-value-7d1");
      expect(out).not.toContain("local-value-9e2");
    }
    const e = await cli.chalk([
      "exec",
      name,
      "--",
      "sh",
      "-c",
      `echo "$PLAIN $FROM_HERE $${secret} $LOCAL_SECRET"; cat /data/hello.txt`,
    ]);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toBe("1 copied managed-value-7d1 local-value-9e2\nfrom the volume\n");
  });

  test("--integration injects every key of an integration; --gpu reaches the server, which has none here", async () => {
    const integration = `pg_${Math.random().toString(36).slice(2, 8)}`;
    await Integrations.set(
      integration,
      { PGHOST: "db.internal", PGPASSWORD: "pw-5c1" },
      {
        transport: cli.server.transport(),
      },
    );
    const r = await cli.chalk([
      "run",
      TEST_IMAGE,
      "--integration",
      integration,
      "--",
      "sh",
      "-c",
      'echo "$PGHOST $PGPASSWORD"',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("db.internal pw-5c1\n");
    const gpu = await cli.chalk(["run", TEST_IMAGE, "--gpu", "nvidia-l4:1", "--detach"]);
    expect(gpu.code).toBe(1);
    expect(gpu.stderr.trimEnd().split("\n").at(-1)).toMatch(/^chalk: \[failed_precondition\] .*(gpu|GPU)/);
  });

  test("bad flag values are usage errors (exit 2) with one line naming the flag, and nothing starts", async () => {
    const name = uniqueName("bad");
    const cpu = await cli.chalk(["run", TEST_IMAGE, "--name", name, "--detach", "--cpu", "lots"]);
    expect(cpu.code).toBe(2);
    expect(oneErrorLine(cpu.stderr, "invalid_argument")).toBe(true);
    expect(cpu.stderr).toContain("cpu");
    for (const args of [["-p", "70000"], ["-v", "novolumepath"], ["-e", "1BAD=x"], ["--bogus"]]) {
      const r = await cli.chalk(["run", TEST_IMAGE, "--name", name, "--detach", ...args]);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
    }
    const noImage = await cli.chalk(["run", "--detach"]);
    expect(noImage.code).toBe(2);
    const ps = await cli.chalk(["ps", "-a", "-o", "json"]);
    expect((JSON.parse(ps.stdout) as { name: string }[]).map((c) => c.name)).not.toContain(name);
  });
});

describe("chalk exec", () => {
  test("stdout and stderr stay apart and the command's exit code is chalk's", async () => {
    const name = await started();
    const r = await cli.chalk(["exec", name, "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(r).toEqual({ code: 3, stdout: "out\n", stderr: "err\n" });
    const ok = await cli.chalk(["exec", name, "--", "true"]);
    expect(ok.code).toBe(0);
  });

  test("a signal that ends the command is 128 + its number", async () => {
    const name = await started();
    expect((await cli.chalk(["exec", name, "--", "sh", "-c", "kill -9 $$"])).code).toBe(137);
    expect((await cli.chalk(["exec", name, "--", "sh", "-c", "kill -TERM $$"])).code).toBe(143);
  });

  test("docker's codes for chalk's own failures: 127 not found, 126 cannot run, 125 chalk or server", async () => {
    const name = await started();
    const missing = await cli.chalk(["exec", name, "--", "no-such-command-x"]);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain("no-such-command-x");
    expect((await cli.chalk(["exec", name, "--", "/no/such/path"])).code).toBe(127);
    expect((await cli.chalk(["exec", name, "--", "/etc/hostname"])).code).toBe(126);
    expect((await cli.chalk(["exec", name, "--", "/etc"])).code).toBe(126);
    // A working directory the command cannot start in: docker exec -w gives 126 (runc's "chdir to
    // cwd ... failed"), whether or not the command exists.
    for (const [workdir, command] of [
      ["/missing", "true"],
      ["/missing", "no-such-command-x"],
      ["/etc/hostname", "true"],
      ["/no/such/deep/dir", "/bin/true"],
    ] as const) {
      const bad = await cli.chalk(["exec", "-w", workdir, name, "--", command]);
      expect(bad.code, `-w ${workdir} -- ${command}: ${bad.stderr}`).toBe(126);
      expect(bad.stderr).toContain(JSON.stringify(workdir));
    }

    const gone = await cli.chalk(["exec", uniqueName("nobody"), "--", "true"]);
    expect(gone.code).toBe(125);
    expect(oneErrorLine(gone.stderr, "not_found")).toBe(true);
    expect((await cli.chalk(["exec", "--bogus", name, "--", "true"])).code).toBe(125);
    expect((await cli.chalk(["exec", name])).code).toBe(125);
    const unreachable = await cli.chalk(["exec", "--server", "127.0.0.1:1", name, "--", "true"]);
    expect(unreachable.code).toBe(125);
    expect(oneErrorLine(unreachable.stderr, "unavailable")).toBe(true);

    expect((await cli.chalk(["stop", name])).code).toBe(0);
    const stopped = await cli.chalk(["exec", name, "--", "true"]);
    expect(stopped.code).toBe(125);
    expect(oneErrorLine(stopped.stderr, "failed_precondition")).toBe(true);
  });

  test("-i streams stdin to the command and its EOF ends the input; without -i stdin is closed", async () => {
    const name = await started();
    const lines = Array.from({ length: 2000 }, (_, i) => `line ${i}`).join("\n") + "\n";
    const r = await cli.chalk(["exec", "-i", name, "--", "sh", "-c", "wc -l; echo done"], { input: lines });
    expect(r).toEqual({ code: 0, stdout: "2000\ndone\n", stderr: "" });
    const closed = await cli.chalk(["exec", name, "--", "cat"], { input: "not sent\n" });
    expect(closed).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  test("a reader that goes away ends chalk as SIGPIPE would (141), without a stack trace", async () => {
    const name = await started();
    const env = cli.env();
    const out = execFileSync(
      "bash",
      [
        "-c",
        `${process.execPath} ${CHALK} exec ${name} -- sh -c 'yes | head -c 50000000' | head -c 5; echo " status=\${PIPESTATUS[0]}"`,
      ],
      { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
    expect(out).toBe("y\ny\ny status=141\n");
  });

  test("-e and -w apply to the command", async () => {
    const name = await started();
    const r = await cli.chalk([
      "exec",
      "-e",
      "GREETING=hi",
      "-w",
      "/tmp",
      name,
      "--",
      "sh",
      "-c",
      'echo "$GREETING $(pwd)"',
    ]);
    expect(r.stdout).toBe("hi /tmp\n");
  });
});

describe("chalk run -- CMD", () => {
  test("runs the command, streams its output, exits with its code, and stops the container", async () => {
    const name = uniqueName("job");
    const r = await cli.chalk([
      "run",
      TEST_IMAGE,
      "--name",
      name,
      "-e",
      "X=42",
      "--",
      "sh",
      "-c",
      'echo "x=$X"; echo warn >&2; exit 4',
    ]);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe("x=42\n");
    expect(r.stderr).toContain("warn\n");
    expect((await inspect(name)).status).toBe("Stopped");
  });

  test("docker's codes: 127 for a missing command, 125 for usage and server failures", async () => {
    const name = uniqueName("job");
    expect((await cli.chalk(["run", TEST_IMAGE, "--name", name, "--", "no-such-command-y"])).code).toBe(127);
    expect((await inspect(name)).status).toBe("Stopped");
    expect((await cli.chalk(["run", "--bogus", TEST_IMAGE, "--", "true"])).code).toBe(125);
    const missingImage = await cli.chalk(["run", "no-such-image-ref", "--", "true"]);
    expect(missingImage.code).toBe(125);
    expect(missingImage.stderr.trimEnd().split("\n").at(-1)).toMatch(/^chalk: \[[a-z_]+\] /);
    // Without a command, the conventional codes.
    expect((await cli.chalk(["run", "--bogus", TEST_IMAGE])).code).toBe(2);
    expect((await cli.chalk(["run", TEST_IMAGE, "echo", "hi"])).code).toBe(2);
  });

  test("--detach exits 0 once the container started even when its entrypoint fails at once, as docker run -d", async () => {
    const name = uniqueName("fails");
    const r = await cli.chalk(["run", TEST_IMAGE, "--name", name, "--detach", "--", "sh", "-c", "exit 3"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(UUID);
    const c = await until(name, (c) => c.status !== "Running" && c.status !== "Pending");
    expect(c).toMatchObject({ id: r.stdout.trim(), status: "Failed", exitCode: 3 });
    expect((await cli.chalk(["ps", "-a"])).stdout).toMatch(
      new RegExp(`^${name}\\s+\\S+\\s+Failed \\(3\\)`, "m"),
    );
    const listed = JSON.parse((await cli.chalk(["ps", "-a", "-o", "json"])).stdout) as Record<
      string,
      unknown
    >[];
    expect(listed.find((x) => x.name === name)).toMatchObject({ status: "Failed", exitCode: 3 });
    // The decision is in the help.
    const help = (await cli.chalk(["run", "--help"])).stdout.replace(/\s+/g, " ");
    expect(help).toContain(
      "with --detach, 0 once the container started, even if its entrypoint then fails (as docker run -d)",
    );
  });

  test("--detach with a command makes it the entrypoint: logs and ps -a show how it ended", async () => {
    const name = uniqueName("bg");
    const r = await cli.chalk([
      "run",
      TEST_IMAGE,
      "--name",
      name,
      "--detach",
      "--",
      "sh",
      "-c",
      "for i in 1 2 3 4 5; do echo line$i; done; exit 3",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const c = await until(name, (c) => c.status !== "Running" && c.status !== "Pending");
    expect(c).toMatchObject({ status: "Failed", exitCode: 3, entrypoint: ["sh", "-c", expect.any(String)] });

    const logs = await cli.chalk(["logs", name]);
    expect(logs).toEqual({ code: 0, stdout: "line1\nline2\nline3\nline4\nline5\n", stderr: "" });
    expect((await cli.chalk(["logs", "--tail", "2", name])).stdout).toBe("line4\nline5\n");
    expect((await cli.chalk(["logs", "-f", "--tail", "1", name])).stdout).toBe("line5\n");
    expect((await cli.chalk(["logs", "--tail", "x", name])).code).toBe(2);
    const missing = await cli.chalk(["logs", uniqueName("nobody")]);
    expect(missing.code).toBe(1);
    expect(oneErrorLine(missing.stderr, "not_found")).toBe(true);

    expect((await cli.chalk(["ps"])).stdout).not.toContain(name);
    expect((await cli.chalk(["ps", "-a"])).stdout).toMatch(
      new RegExp(`^${name}\\s+\\S+\\s+Failed \\(3\\)`, "m"),
    );
  });

  test("logs -f follows new output until the entrypoint ends", async () => {
    const name = uniqueName("follow");
    await cli.chalk([
      "run",
      TEST_IMAGE,
      "--name",
      name,
      "--detach",
      "--",
      "sh",
      "-c",
      "echo first; sleep 3; echo second",
    ]);
    const r = await cli.chalk(["logs", "-f", name]);
    expect(r).toEqual({ code: 0, stdout: "first\nsecond\n", stderr: "" });
  });
});

describe("chalk stop", () => {
  test("stops several containers with a grace period and prints their names", async () => {
    const a = await started();
    const b = await started();
    const r = await cli.chalk(["stop", "--grace", "2s", a, b]);
    expect(r).toEqual({ code: 0, stdout: `${a}\n${b}\n`, stderr: "" });
    expect((await inspect(a)).status).toBe("Stopped");
    expect((await inspect(b)).status).toBe("Stopped");
  });

  test("a missing container fails that one (exit 1) and still stops the others; a bad grace is a usage error", async () => {
    const a = await started();
    const ghost = uniqueName("ghost");
    const r = await cli.chalk(["stop", ghost, a]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(`${a}\n`);
    expect(r.stderr).toMatch(new RegExp(`^chalk: ${ghost}: \\[not_found\\] `));
    expect((await cli.chalk(["stop", "--grace", "soon", a])).code).toBe(2);
    expect((await cli.chalk(["stop", "--grace", "2h", a])).code).toBe(2);
    expect((await cli.chalk(["stop"])).code).toBe(2);
  });
});
