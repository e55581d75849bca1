import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { expect, test } from "vitest";
import { ImageBuilder } from "../src/builder/index.js";
import { Image } from "../src/index.js";
import { KILLED_SPEC } from "./fixtures/build-child.js";
import { checkStore, closeBuilder, openBuilder, recorder, withSandbox } from "./fixtures.js";

/** Starts the child builder (tsx's loader imported directly, so the pid is the builder's own). */
function startChild(root: string): ChildProcess {
  const loader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  return spawn(
    process.execPath,
    [
      "--import",
      loader,
      "--conditions=@chalk/source",
      join(import.meta.dirname, "fixtures", "build-child.ts"),
      root,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
}

async function mountsUnder(root: string): Promise<string[]> {
  return (await readFile("/proc/self/mountinfo", "utf8")).split("\n").filter((l) => l.includes(root));
}

test("a build killed in the middle of a step leaves the store consistent, and the next build succeeds", async () => {
  // The store starts out with the base and the first step cached.
  const first = await openBuilder();
  const root = first.dir;
  let child: ChildProcess | undefined;
  await first.builder.getOrBuild(Image.debianSlim("3.11").runCommands("echo first > /first"));
  await first.builder.close();
  try {
    // Kill it hard: a new process runs the same build and dies while the long step runs.
    const specDigest = await KILLED_SPEC.digest();
    child = startChild(root);
    const lines = createInterface({ input: child.stdout! });
    for await (const line of lines) {
      if (line.includes('"started')) break;
    }
    const exited = once(child, "exit");
    process.kill(child.pid!, "SIGKILL");
    await exited;

    // A new builder on the store: stops the orphaned sandbox, drops the temporary files.
    const again = await ImageBuilder.open({ storeDir: first.storeDir, runtime: first.runtime });
    try {
      expect(await first.runtime.list()).toEqual([]);
      expect(await mountsUnder(root)).toEqual([]);
      expect(await readdir(join(first.storeDir, "chalk", "tmp"))).toEqual([]);
      await checkStore(first.storeDir);
      const status = await again.status(specDigest);
      expect(status.status).toBe("failed");
      expect(status.message).toBe("the build was interrupted");

      const log = recorder();
      const built = await again.resolve(KILLED_SPEC, { onEvent: log.onEvent });
      expect(built.cached).toBe(false);
      const rebuilt = log.events
        .filter((e) => e.type === "step" && !e.cached)
        .map((e) => (e.type === "step" ? e.index : -1));
      expect(rebuilt).toEqual([2]);
      await withSandbox(first.runtime, built, async (s) => {
        expect((await s.exec("cat", "/first", "/work/partial", "/work/done")).stdoutText).toBe(
          "first\npartial\ndone\n",
        );
      });
      await checkStore(first.storeDir);
    } finally {
      await again.close();
    }
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGKILL");
    await closeBuilder(first);
  }
});
