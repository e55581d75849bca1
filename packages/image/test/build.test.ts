import { readFileSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { beforeAll, describe, expect, test } from "vitest";
import type { ImageBuildEvent } from "../src/build-events.js";
import type { ResolvedImage } from "../src/builder/index.js";
import { Image } from "../src/index.js";
import { checkStore, recorder, useBuilder, withSandbox } from "./fixtures.js";

const ctx = useBuilder();

const stepsBuilt = (events: ImageBuildEvent[]) =>
  events
    .filter((e) => e.type === "step" && !e.cached && e.index > 0)
    .map((e) => (e.type === "step" ? e.index : -1));

describe("debianSlim 3.11 with pip", () => {
  test("pipInstall(['requests']) builds, and requests imports in a sandbox made from the image", async () => {
    const log = recorder();
    const image = await ctx.h.builder.resolve(Image.debianSlim("3.11").pipInstall(["requests"]), {
      onEvent: log.onEvent,
    });
    expect(image.imageUri).toMatch(/^local\/chalk\/images@sha256:[a-f0-9]{64}$/);
    expect(log.logText()).toContain("Successfully installed");
    const steps = log.events
      .filter((e) => e.type === "step")
      .map((e) => (e.type === "step" ? e.description : ""));
    expect(steps).toEqual(["FROM python:3.11-slim", "pip install requests"]);
    await withSandbox(ctx.h.runtime, image, async (s) => {
      const r = await s.exec("python", "-c", "import requests; print(requests.__version__)");
      expect(r.stderrText).toBe("");
      expect(r.exitCode).toBe(0);
      expect(r.stdoutText).toMatch(/^\d+\.\d+\.\d+\n$/);
      const pip = await s.exec("pip", "--version");
      expect(pip.stdoutText).toContain("python 3.11");
    });
  });

  test("asking again for an equal spec is a cache hit that builds nothing", async () => {
    const log = recorder();
    const again = await ctx.h.builder.getOrBuild(Image.debianSlim("3.11").pipInstall(["requests"]), {
      onEvent: log.onEvent,
    });
    expect(again.status).toBe("exists");
    expect(log.events).toEqual([]);
  });
});

describe("steps verified inside a sandbox", () => {
  let image: ResolvedImage;
  let dir: string;
  beforeAll(async () => {
    const { mkdtemp, writeFile } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    dir = await mkdtemp(join(tmpdir(), "chalk-image-copy-"));
    await writeFile(join(dir, "tool.sh"), "#!/bin/sh\necho tool says $GREETING\n");
    image = await ctx.h.builder.resolve(
      Image.debianSlim("3.11")
        .aptInstall(["jq"])
        .env({ GREETING: "hello from env", EMPTY: "" })
        .runCommands('echo "$GREETING" > /greeting', "mkdir -p /data && echo ran > /data/ran")
        .workdir("/srv/app")
        .runCommands("pwd > where")
        .addLocalFile(join(dir, "tool.sh"), "/usr/local/bin/tool", { strategy: "copy", mode: 0o755 })
        .addLocalFile(join(dir, "tool.sh"), "/var/tmp/new/tool.sh", { strategy: "copy" })
        .entrypoint(["sleep", "infinity"]),
    );
    return async () => {
      const { rm } = await import("node:fs/promises");
      await rm(dir, { recursive: true, force: true });
    };
  });

  test("aptInstall installs a Debian package that runs", async () => {
    await withSandbox(ctx.h.runtime, image, async (s) => {
      const r = await s.exec("jq", "-n", "1+1");
      expect(r.stdoutText).toBe("2\n");
      // The package lists stay out of the image.
      expect((await s.exec("sh", "-c", "echo /var/lib/apt/lists/*")).stdoutText).toBe(
        "/var/lib/apt/lists/*\n",
      );
    });
  });

  test("runCommands run in order through /bin/sh and see the env set before them", async () => {
    await withSandbox(ctx.h.runtime, image, async (s) => {
      expect((await s.exec("cat", "/greeting", "/data/ran")).stdoutText).toBe("hello from env\nran\n");
    });
  });

  test("env reaches containers of the image", async () => {
    expect(image.env.GREETING).toBe("hello from env");
    expect(image.env.EMPTY).toBe("");
    await withSandbox(ctx.h.runtime, image, async (s) => {
      expect((await s.exec("sh", "-c", 'echo "$GREETING"')).stdoutText).toBe("hello from env\n");
    });
  });

  test("workdir is created, is the cwd of later steps and of containers", async () => {
    expect(image.workdir).toBe("/srv/app");
    await withSandbox(ctx.h.runtime, image, async (s) => {
      expect((await s.exec("cat", "/srv/app/where")).stdoutText).toBe("/srv/app\n");
      expect((await s.exec("pwd")).stdoutText).toBe("/srv/app\n");
    });
  });

  test("addLocalFile with strategy copy bakes the file in with its mode", async () => {
    await withSandbox(ctx.h.runtime, image, async (s) => {
      const r = await s.exec("tool");
      expect(r.stdoutText).toBe("tool says hello from env\n");
      const modes = await s.exec(
        "stat",
        "-c",
        "%a %u",
        "/usr/local/bin/tool",
        "/var/tmp",
        "/var/tmp/new",
        "/var/tmp/new/tool.sh",
      );
      // Copying kept its parents' metadata from the layers below.
      expect(modes.stdoutText).toBe("755 0\n1777 0\n755 0\n644 0\n");
    });
  });

  test("the image config carries the entrypoint", () => {
    expect(image.entrypoint).toEqual(["sleep", "infinity"]);
  });
});

describe("layers", () => {
  test("deleting and replacing base files in a step hides them in the image (whiteouts, opaque dirs)", async () => {
    const image = await ctx.h.builder.resolve(
      Image.debianSlim("3.11").runCommands(
        "rm /etc/debian_version && rm -rf /usr/share/doc && mkdir /usr/share/doc && echo only > /usr/share/doc/only",
      ),
    );
    await withSandbox(ctx.h.runtime, image, async (s) => {
      const r = await s.exec("sh", "-c", "test -e /etc/debian_version; echo $?; echo /usr/share/doc/*");
      expect(r.stdoutText).toBe("1\n/usr/share/doc/only\n");
    });
  });

  test("a step's writes are its own layer: the files it wrote, and nothing of gVisor's", async () => {
    const image = await ctx.h.builder.resolve(
      Image.debianSlim("3.11").runCommands("mkdir -p /srv/step && echo written in a step > /srv/step/file"),
    );
    const top = image.rootfs.at(-1) as string;
    expect(readFileSync(join(top, "srv", "step", "file"), "utf8")).toBe("written in a step\n");
    // The sandbox wrote through to the overlay's upper dir (runsc --overlay2=none), so no layer
    // holds a gVisor file store (`.gvisor.filestore.<id>`, runsc's default root:self overlay).
    for (const layer of image.rootfs) {
      expect((await readdir(layer)).filter((e) => e.startsWith(".gvisor"))).toEqual([]);
    }
  });

  test("changing only the last step rebuilds only the last step", async () => {
    const base = Image.debianSlim("3.11")
      .runCommands("echo one > /one")
      .env({ A: "1" })
      .runCommands("echo two > /two");
    const first = recorder();
    await ctx.h.builder.getOrBuild(base.runCommands("echo three > /three"), { onEvent: first.onEvent });
    const second = recorder();
    const changed = await ctx.h.builder.resolve(base.runCommands("echo THREE > /three"), {
      onEvent: second.onEvent,
    });
    expect(stepsBuilt(second.events)).toEqual([4]);
    const cached = second.events
      .filter((e) => e.type === "step" && e.cached)
      .map((e) => (e.type === "step" ? e.index : -1));
    expect(cached).toEqual([0, 1, 2, 3]);
    await withSandbox(ctx.h.runtime, changed, async (s) => {
      expect((await s.exec("cat", "/one", "/two", "/three")).stdoutText).toBe("one\ntwo\nTHREE\n");
    });
  });

  test("a step after a changed env is rebuilt: the environment is part of a step's cache key", async () => {
    const a = recorder();
    await ctx.h.builder.getOrBuild(Image.debianSlim("3.11").env({ V: "x" }).runCommands('echo "$V" > /v'), {
      onEvent: a.onEvent,
    });
    const b = recorder();
    const img = await ctx.h.builder.resolve(
      Image.debianSlim("3.11").env({ V: "y" }).runCommands('echo "$V" > /v'),
      {
        onEvent: b.onEvent,
      },
    );
    expect(stepsBuilt(b.events)).toEqual([2]);
    await withSandbox(ctx.h.runtime, img, async (s) => {
      expect((await s.exec("cat", "/v")).stdoutText).toBe("y\n");
    });
  });
});

describe("failures", () => {
  test("a nonexistent pip package fails the build with pip's own message in the log and records no image", async () => {
    const spec = Image.debianSlim("3.11").pipInstall(["chalk-no-such-package-3f9a2b"]);
    const log = recorder();
    const layersBefore = await readdir(join(ctx.h.storeDir, "chalk", "layers"));
    const err = await ctx.h.builder
      .getOrBuild(spec, { onEvent: log.onEvent })
      .catch((e: unknown) => e as ChalkError);
    expect(err).toBeInstanceOf(ChalkError);
    expect((err as ChalkError).code).toBe(Code.FailedPrecondition);
    expect((err as ChalkError).message).toContain("step 1 (pip install chalk-no-such-package-3f9a2b)");
    expect(log.logText()).toContain("No matching distribution found for chalk-no-such-package-3f9a2b");
    const status = await ctx.h.builder.status(await spec.digest());
    expect(status.status).toBe("failed");
    expect(status.message).toContain("No matching distribution found");
    expect(status.manifestDigest).toBe("");
    expect(ctx.h.builder.list("default").images.map((i) => i.specDigest)).not.toContain(await spec.digest());
    // No partial layer: nothing new among the unpacked layers, no temporary files, a consistent index.
    expect(await readdir(join(ctx.h.storeDir, "chalk", "layers"))).toEqual(layersBefore);
    await checkStore(ctx.h.storeDir);
    expect(await ctx.h.runtime.list()).toEqual([]);
  });

  test("a failing run command fails the build naming the step and quoting its output", async () => {
    const err = await ctx.h.builder
      .getOrBuild(Image.debianSlim("3.11").runCommands("echo about to fail >&2; exit 7", "echo never"))
      .catch((e: unknown) => e as ChalkError);
    expect((err as ChalkError).code).toBe(Code.FailedPrecondition);
    expect((err as ChalkError).message).toContain("exited with code 7");
    expect((err as ChalkError).message).toContain("about to fail");
  });

  test("two concurrent builds of one spec become one build", async () => {
    const spec = Image.debianSlim("3.11").runCommands("echo concurrent > /c; sleep 1");
    const a = recorder();
    const b = recorder();
    const [x, y] = await Promise.all([
      ctx.h.builder.getOrBuild(spec, { onEvent: a.onEvent }),
      ctx.h.builder.getOrBuild(spec, { onEvent: b.onEvent }),
    ]);
    expect(x).toEqual(y);
    expect(x.status).toBe("succeeded");
    // One build: the second caller saw the same events, replayed, not a second run.
    expect(b.events).toEqual(a.events);
    expect(stepsBuilt(a.events)).toEqual([1]);
  });

  test("the store stays consistent after all of the above", async () => {
    const manifests = await checkStore(ctx.h.storeDir);
    expect(manifests.length).toBeGreaterThan(3);
  });
});
