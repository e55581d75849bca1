/**
 * `chalk login`, `chalk context ls|use|rm`, where a command connects (flags over environment
 * variables over the current context), `chalk completion`, and `--help` of every command.
 */
import { execFileSync } from "node:child_process";
import { readFile, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describe, expect, test } from "vitest";
import { uniqueName, useCli } from "./fixtures.js";

const cli = useCli();

/** chalk's environment without the server's variables: only the context says where to go. */
function contextOnly(extra: Record<string, string | undefined> = {}) {
  return {
    env: { CHALK_API_SERVER: undefined, CHALK_TOKEN: undefined, CHALK_ENVIRONMENT: undefined, ...extra },
  };
}

describe("contexts", () => {
  test("login checks the token, saves the context 0600 and uses it; ls never shows the token", async () => {
    const config = join(cli.dir, "config.json");
    const bad = await cli.chalk(["login", cli.server.address, "--name", "local"], {
      ...contextOnly(),
      input: "not-the-right-token-at-all\n",
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("[unauthenticated]");
    await expect(stat(config)).rejects.toThrow();

    const ok = await cli.chalk(["login", cli.server.address, "--name", "local"], {
      ...contextOnly(),
      input: `${cli.server.token}\n`,
    });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout + ok.stderr).not.toContain(cli.server.token);
    expect((await stat(config)).mode & 0o777).toBe(0o600);
    expect((await stat(dirname(config))).mode & 0o077).toBe(0);
    expect(JSON.parse(await readFile(config, "utf8"))).toEqual({
      currentContext: "local",
      contexts: { local: { server: cli.server.address, token: cli.server.token, environment: "default" } },
    });

    // No CHALK_* variables: the context alone connects.
    const vol = uniqueName("ctx");
    expect((await cli.chalk(["volume", "create", vol], contextOnly())).code).toBe(0);
    expect((await cli.chalk(["volume", "ls"], contextOnly())).stdout).toContain(vol);

    const ls = await cli.chalk(["context", "ls", "-o", "json"], contextOnly());
    expect(JSON.parse(ls.stdout)).toEqual([
      {
        name: "local",
        current: true,
        server: cli.server.address,
        environment: "default",
        ca: null,
        hasToken: true,
      },
    ]);
    const table = await cli.chalk(["context", "ls"], contextOnly());
    expect(table.stdout).toMatch(/^\*\s+local\s+127\.0\.0\.1:\d+\s+default/m);
    expect(ls.stdout + table.stdout).not.toContain(cli.server.token);
  });

  test("flags override environment variables, which override the context; its token goes only to its server", async () => {
    await cli.chalk(["login", cli.server.address, "--name", "prec", "--environment", "team-a"], {
      ...contextOnly(),
      input: `${cli.server.token}\n`,
    });
    const vol = uniqueName("team-a");
    expect((await cli.chalk(["volume", "create", vol], contextOnly())).code).toBe(0);
    // The context says team-a; CHALK_ENVIRONMENT says team-b; --environment says team-a again.
    expect((await cli.chalk(["volume", "ls"], contextOnly())).stdout).toContain(vol);
    expect(
      (await cli.chalk(["volume", "ls"], contextOnly({ CHALK_ENVIRONMENT: "team-b" }))).stdout,
    ).not.toContain(vol);
    expect(
      (
        await cli.chalk(
          ["volume", "ls", "--environment", "team-a"],
          contextOnly({ CHALK_ENVIRONMENT: "team-b" }),
        )
      ).stdout,
    ).toContain(vol);
    // CHALK_API_SERVER naming the same server by another address: the context's token is not sent there.
    const other = cli.server.address.replace("127.0.0.1", "localhost");
    const r = await cli.chalk(["volume", "ls"], contextOnly({ CHALK_API_SERVER: other }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("[unauthenticated]");
    const viaFlag = await cli.chalk(
      ["volume", "ls", "--server", other],
      contextOnly({ CHALK_TOKEN: cli.server.token }),
    );
    expect(viaFlag.code, viaFlag.stderr).toBe(0);
    // An unknown --context is a usage error.
    expect((await cli.chalk(["volume", "ls", "--context", "nope"], contextOnly())).code).toBe(2);
  });

  test("use switches, rm removes; a CA is kept but refused until the SDK speaks TLS with one", async () => {
    const env = contextOnly();
    await cli.chalk(["login", cli.server.address, "--name", "one"], {
      ...env,
      input: `${cli.server.token}\n`,
    });
    await cli.chalk(["login", cli.server.address, "--name", "two"], {
      ...env,
      input: `${cli.server.token}\n`,
    });
    expect((await cli.chalk(["context", "use", "one"], env)).code).toBe(0);
    const current = () =>
      cli
        .chalk(["context", "ls", "-o", "json"], env)
        .then(
          (r) => (JSON.parse(r.stdout) as { name: string; current: boolean }[]).find((c) => c.current)?.name,
        );
    expect(await current()).toBe("one");
    expect((await cli.chalk(["context", "use", "missing"], env)).code).toBe(1);
    expect((await cli.chalk(["context", "rm", "one"], env)).code).toBe(0);
    expect(await current()).toBeUndefined();
    expect((await cli.chalk(["context", "rm", "one"], env)).code).toBe(1);

    const ca = join(cli.dir, "ca.pem");
    await writeFile(ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    const tls = await cli.chalk(["login", cli.server.address, "--name", "tls", "--ca", ca, "--no-verify"], {
      ...env,
      input: "token-for-a-tls-server\n",
    });
    expect(tls.code, tls.stderr).toBe(0);
    const saved = JSON.parse(await readFile(join(cli.dir, "config.json"), "utf8")) as {
      contexts: Record<string, { ca?: string }>;
    };
    expect(saved.contexts.tls?.ca).toBe(ca);
    const refused = await cli.chalk(["ps"], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^chalk: \[unimplemented\] TLS with a CA file/);
    const notPem = join(cli.dir, "not.pem");
    await writeFile(notPem, "hello");
    expect(
      (await cli.chalk(["login", cli.server.address, "--ca", notPem], { ...env, input: "x\n" })).code,
    ).toBe(2);
    expect((await cli.chalk(["login", "no-port-here"], { ...env, input: "x\n" })).code).toBe(2);
  });

  test("a config file others can read draws a warning; a broken one is an error naming it", async () => {
    const path = join(cli.dir, "loose.json");
    await writeFile(path, JSON.stringify({ contexts: {} }), { mode: 0o644 });
    const loose = await cli.chalk(["context", "ls"], { env: { CHALK_CONFIG: path } });
    expect(loose.code).toBe(0);
    expect(loose.stderr).toContain("can be read by other users");
    const broken = join(cli.dir, "broken.json");
    await writeFile(broken, "{", { mode: 0o600 });
    const r = await cli.chalk(["context", "ls"], { env: { CHALK_CONFIG: broken } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(broken);
  });
});

const COMMANDS = [
  ["run"],
  ["exec"],
  ["logs"],
  ["ps"],
  ["inspect"],
  ["stop"],
  ["cp"],
  ["volume"],
  ["volume", "ls"],
  ["volume", "create"],
  ["volume", "rm"],
  ["volume", "ls-files"],
  ["volume", "put"],
  ["volume", "get"],
  ["secret"],
  ["secret", "set"],
  ["secret", "ls"],
  ["secret", "rm"],
  ["image"],
  ["image", "build"],
  ["image", "ls"],
  ["login"],
  ["context"],
  ["context", "ls"],
  ["context", "use"],
  ["context", "rm"],
  ["completion"],
];

describe("help and completion", () => {
  test("every command has --help with an example", async () => {
    for (const cmd of [[], ...COMMANDS]) {
      const r = await cli.chalk([...cmd, "--help"]);
      expect(r.code, cmd.join(" ")).toBe(0);
      expect(r.stdout, cmd.join(" ")).toMatch(
        /\nExamples:\n {2}\$ (chalk|source|echo|pass|chalk completion)/,
      );
    }
  });

  test("the bash script completes commands, subcommands and flags; zsh and fish scripts name them all", async () => {
    const bash = await cli.chalk(["completion", "bash"]);
    expect(bash.code).toBe(0);
    const script = join(cli.dir, "chalk.bash");
    await writeFile(script, bash.stdout);
    const complete = (words: string) =>
      execFileSync(
        "bash",
        [
          "-c",
          `source ${script}; COMP_WORDS=(${words}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _chalk; echo "\${COMPREPLY[*]}"`,
        ],
        { encoding: "utf8" },
      ).trim();
    expect(complete("chalk vo").split(" ")).toEqual(["volume"]);
    expect(complete("chalk volume ''").split(" ")).toEqual(
      expect.arrayContaining(["ls", "create", "rm", "ls-files", "put", "get"]),
    );
    expect(complete("chalk run --ima").split(" ")).toEqual(["--image-file"]);
    expect(complete("chalk exec -").split(" ")).toEqual(
      expect.arrayContaining(["-i", "-t", "--interactive", "--tty"]),
    );
    const zsh = await cli.chalk(["completion", "zsh"]);
    expect(zsh.stdout).toContain("#compdef chalk");
    const fish = await cli.chalk(["completion", "fish"]);
    for (const cmd of [
      "run",
      "exec",
      "logs",
      "ps",
      "inspect",
      "stop",
      "cp",
      "volume",
      "secret",
      "image",
      "login",
      "context",
    ]) {
      expect(fish.stdout).toContain(`-a ${cmd} `);
    }
    expect(fish.stdout).toContain("-l image-file");
    expect((await cli.chalk(["completion", "tcsh"])).code).toBe(2);
  });
});
