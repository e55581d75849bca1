import { PassThrough } from "node:stream";
import { describe, expect, test } from "vitest";
import { ProcessOutput } from "./process-output.js";

async function text(p: ProcessOutput): Promise<string> {
  let s = "";
  for await (const c of p.stream) s += Buffer.from(c).toString();
  return s;
}

const prefix = () => "waiting on pid 7: ";

describe("a process's output stream (in-memory test double for the pipe)", () => {
  test("ends at the drain deadline after the exit even when a child keeps the pipe open", async () => {
    const pipe = new PassThrough();
    const out = new ProcessOutput(pipe);
    pipe.write("before exit\n");
    out.finish({ drainMs: 20 });
    pipe.write("a child's late output\n");
    expect(await text(out)).toMatch(/^before exit\n/);
    expect(pipe.destroyed).toBe(true);
  });

  test("ends at once when the pipe ends first", async () => {
    const pipe = new PassThrough();
    const out = new ProcessOutput(pipe);
    pipe.end("all\n");
    out.finish({ drainMs: 60_000 });
    expect(await text(out)).toBe("all\n");
  });

  test("runsc's trailing line is dropped when runsc failed, kept when it did not", async () => {
    for (const runscFailed of [true, false]) {
      const pipe = new PassThrough();
      const out = new ProcessOutput(pipe, { runscLinePrefix: prefix });
      pipe.write("mine\n");
      pipe.write('waiting on pid 7: urpc method "containerManager.WaitPID" failed: EOF\n');
      await new Promise((r) => setImmediate(r));
      pipe.end();
      out.finish({ runscFailed });
      const got = await text(out);
      expect(got).toBe(
        runscFailed
          ? "mine\n"
          : 'mine\nwaiting on pid 7: urpc method "containerManager.WaitPID" failed: EOF\n',
      );
    }
  });

  test("a held line that turns out not to be the last is passed on at once with what follows", async () => {
    const pipe = new PassThrough();
    const out = new ProcessOutput(pipe, { runscLinePrefix: prefix });
    const seen: string[] = [];
    out.stream.on("data", (c) => seen.push(Buffer.from(c).toString()));
    pipe.write("waiting on pid 7: my own words\n");
    await new Promise((r) => setImmediate(r));
    expect(seen.join("")).toBe("");
    pipe.write("more\n");
    await new Promise((r) => setImmediate(r));
    expect(seen.join("")).toBe("waiting on pid 7: my own words\nmore\n");
    pipe.end();
    out.finish({ runscFailed: true });
  });

  test("a line for another pid, or without the prefix, is never held", async () => {
    const pipe = new PassThrough();
    const out = new ProcessOutput(pipe, { runscLinePrefix: prefix });
    const seen: string[] = [];
    out.stream.on("data", (c) => seen.push(Buffer.from(c).toString()));
    pipe.write("waiting on pid 8: not ours\n");
    await new Promise((r) => setImmediate(r));
    expect(seen.join("")).toBe("waiting on pid 8: not ours\n");
    pipe.end();
    out.finish();
  });
});
