/**
 * chalk in a real terminal (tmux): `exec -it` into bash with raw mode, resizes and Ctrl-C; signals
 * forwarded without a TTY; the build progress rendering and finishing cleanly; the hidden secret
 * prompt; and Ctrl-C while `chalk run` follows logs asking whether to stop the container.
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { CHALK } from "./cli.js";
import { TEST_IMAGE, uniqueName, useCli } from "./fixtures.js";
import { Terminal } from "./tmux.js";

const cli = useCli();
const terms: Terminal[] = [];
afterEach(() => {
  for (const t of terms.splice(0)) t.kill();
});

function terminal(cols = 100, rows = 30): Terminal {
  const t = new Terminal();
  terms.push(t);
  // A person's terminal: the runner's CI variable (which turns animation off) stays out of it.
  const { CI: _ci, ...env } = cli.env();
  t.start({ ...env, PATH: process.env.PATH ?? "/usr/bin:/bin" }, cli.dir, cols, rows);
  return t;
}

const chalk = `${process.execPath} ${CHALK}`;

async function container(): Promise<string> {
  const name = uniqueName("tty");
  const r = await cli.chalk(["run", TEST_IMAGE, "--name", name, "--detach"]);
  expect(r.code, r.stderr).toBe(0);
  return name;
}

async function status(name: string): Promise<string> {
  const r = await cli.chalk(["inspect", name]);
  return (JSON.parse(r.stdout) as { status: string }).status;
}

describe("chalk exec -it in a terminal", () => {
  test("bash: typed commands run and print, resizes reach stty size, Ctrl-C reaches the process and not the container", async () => {
    const name = await container();
    const t = terminal(100, 30);
    t.line(`${chalk} exec -it ${name} -- bash --norc --noprofile; echo "chalk-exit=$?"`);
    await t.waitFor(/bash-[\d.]+# $/m);
    t.line("echo hello-$((6 * 7))");
    await t.waitFor(/^hello-42$/m);

    // The output is matched, not the echoed command line ($(...) is expanded only in the output).
    t.line('echo "size=$(stty size)"');
    await t.waitFor("size=30 100");
    t.resize(120, 40);
    await new Promise((r) => setTimeout(r, 1000));
    t.line('echo "resized=$(stty size)"');
    await t.waitFor("resized=40 120");

    // Ctrl-C travels as a byte in raw mode; the remote terminal turns it into SIGINT for sleep.
    t.line("sleep 600");
    await new Promise((r) => setTimeout(r, 1000));
    t.keys("C-c");
    // bash is back at its prompt and says sleep died of SIGINT.
    t.line('echo "sleep-status=$?"');
    await t.waitFor(/^sleep-status=130$/m);
    t.line("echo still-here");
    await t.waitFor(/^still-here$/m);

    t.line("exit 3");
    await t.waitFor(/^chalk-exit=3$/m);
    expect(await status(name)).toBe("Running");
  });

  test("without -t, Ctrl-C is forwarded as SIGINT to the command's process group", async () => {
    const name = await container();
    const t = terminal();
    t.line(
      `${chalk} exec ${name} -- sh -c 'trap "echo got-sigint; exit 7" INT; echo waiting; sleep 600'; echo "chalk-exit=$?"`,
    );
    await t.waitFor(/^waiting$/m);
    t.keys("C-c");
    await t.waitFor(/got-sigint$/m); // after the terminal's "^C"
    await t.waitFor(/^chalk-exit=7$/m);
    expect(await status(name)).toBe("Running");
  });
});

describe("progress and prompts in a terminal", () => {
  test("image build shows live step progress and finishes cleanly", async () => {
    const nonce = randomBytes(4).toString("hex");
    const spec = join(cli.dir, `progress-${nonce}.ts`);
    await writeFile(
      spec,
      `import { Image } from "@chalk/container";\nexport default Image.debianSlim("3.11").runCommands("for i in $(seq 1 8); do echo tick-$i-${nonce}; sleep 1; done");\n`,
    );
    const t = terminal(120, 30);
    t.line(`${chalk} image build ${spec}; echo "build-exit=$?"`);
    // While the step runs: its spinner line with the state and the tail of its log.
    const live = await t.waitFor(new RegExp(`step 2/2 RUN .* building .*\\n(.*\\n)*.*│ tick-[2-8]-${nonce}`));
    expect(live).toMatch(/✔ step 1\/2 FROM python:3\.11-slim\s+cached/);
    const done = await t.waitFor(/^build-exit=0$/m);
    expect(done).toMatch(/✔ step 2\/2 RUN .*done in [\d.]+m?s/);
    // Finished cleanly: no spinner line, log tail or "building" left on the screen.
    const after = done.slice(done.indexOf(`build ${spec}`));
    expect(after).not.toContain("│");
    expect(after).not.toMatch(/building \d/);
    expect(after).toMatch(/local\/.*@sha256:[0-9a-f]{64}/);
  });

  test("a terminal gets colour and animated progress; NO_COLOR gets plain text and plain progress lines", async () => {
    const name = await container();
    const t = terminal(160, 30);
    t.line(`${chalk} ps; echo ps-done`);
    await t.waitFor(/^ps-done$/m);
    // The header is bold and a Running status green.
    expect(t.screenWithEscapes()).toMatch(
      new RegExp(String.raw`\u001b\[[0-9;]*m.*${name}.*\u001b\[[0-9;]*mRunning`),
    );
    t.line("clear");
    t.line(
      `NO_COLOR=1 ${chalk} ps; NO_COLOR=1 ${chalk} run ${TEST_IMAGE} -- echo plain-run; echo plain-done`,
    );
    const plain = await t.waitFor(/^plain-done$/m);
    expect(t.screenWithEscapes()).not.toMatch(/\u001b\[[0-9;]*m/);
    expect(plain).toMatch(/^starting run-[0-9a-f]{8}$/m);
    expect(plain).toMatch(/^plain-run$/m);
  });

  test("secret set prompts without echoing the value", async () => {
    const name = `TTY_${randomBytes(3).toString("hex").toUpperCase()}`;
    const value = `hidden-${randomBytes(5).toString("hex")}`;
    const t = terminal();
    t.line(`${chalk} secret set ${name}; echo "set-exit=$?"`);
    await t.waitFor(`value of ${name}:`);
    t.type(value);
    t.keys("Enter");
    const screen = await t.waitFor(/^set-exit=0$/m);
    expect(screen).not.toContain(value);
    const r = await cli.chalk([
      "run",
      TEST_IMAGE,
      "--secret",
      name,
      "--",
      "sh",
      "-c",
      `test "$${name}" = ${value} && echo match`,
    ]);
    expect(r.stdout).toBe("match\n");
  });

  test("Ctrl-C while run follows logs asks whether to stop the container", async () => {
    const keep = uniqueName("keep");
    const stop = uniqueName("stop");
    const t = terminal();
    t.line(`${chalk} run ${TEST_IMAGE} --name ${keep}; echo "run-exit=$?"`);
    await t.waitFor(`${keep} is Running`);
    t.keys("C-c");
    await t.waitFor(`Stop container ${keep}?`);
    t.line("n");
    await t.waitFor(/^run-exit=0$/m);
    expect(t.screen()).toContain(`${keep} keeps running`);
    expect(await status(keep)).toBe("Running");

    t.line(`${chalk} run ${TEST_IMAGE} --name ${stop}; echo "run2-exit=$?"`);
    await t.waitFor(`${stop} is Running`);
    t.keys("C-c");
    await t.waitFor(`Stop container ${stop}?`);
    t.line("y");
    await t.waitFor(/^run2-exit=0$/m);
    expect(t.screen()).toContain(`${stop} stopped`);
    expect(await status(stop)).toBe("Stopped");
  });
});
