import { type ChalkError, Code } from "@chalk/core";
import { expect, test } from "vitest";
import { builderImageProvider, type ImageBuildLogLine } from "../src/builder/index.js";
import { Image } from "../src/index.js";
import { useBuilder, withSandbox } from "./fixtures.js";

const ctx = useBuilder();

test("the provider builds a spec sent as bytes, then serves its URI from the store", async () => {
  const provider = builderImageProvider(ctx.h.builder);
  const spec = await Image.debianSlim("3.11")
    .runCommands("echo via provider > /p")
    .env({ P: "1" })
    .toSpecBytes();
  provider.check({ kind: "spec", spec }, "spec.image");
  const lines: ImageBuildLogLine[] = [];
  const built = await provider.resolve({ kind: "spec", spec }, "default", (l) => lines.push(l));
  expect(built.cached).toBe(false);
  expect(lines.map((l) => l.text).join("")).toContain("#1 RUN echo via provider > /p\n");
  expect(lines.every((l) => l.steps === 3)).toBe(true);
  const byUri = await provider.resolve({ kind: "uri", uri: built.imageUri }, "default", () => undefined);
  expect(byUri.rootfs).toEqual(built.rootfs);
  expect(byUri.env.P).toBe("1");
  await withSandbox(ctx.h.runtime, byUri, async (s) => {
    expect((await s.exec("cat", "/p")).stdoutText).toBe("via provider\n");
  });
});

test("the provider refuses malformed specs and references before any work", () => {
  const provider = builderImageProvider(ctx.h.builder);
  const check = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      return err as ChalkError;
    }
    throw new Error("expected an error");
  };
  const bad = check(() => provider.check({ kind: "spec", spec: new Uint8Array([0xff]) }, "spec.image"));
  expect(bad.code).toBe(Code.InvalidArgument);
  expect(bad.field).toBe("spec.image.spec");
  const ref = check(() => provider.check({ kind: "uri", uri: "Not A Ref" }, "spec.image"));
  expect(ref.field).toBe("spec.image.uri");
});
