import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { ChalkError, Code } from "@chalk/core";
import { ImageService, StepSchema } from "@chalk/proto/image/v1";
import {
  addService,
  createClient,
  createTransport,
  listen,
  type RpcServer,
  type Transport,
} from "@chalk/rpc";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { imageServiceImpl } from "../src/builder/index.js";
import { Image, type ImageBuildEvent, ImageClient } from "../src/index.js";
import { useBuilder } from "./fixtures.js";

const ctx = useBuilder();
let server: RpcServer;
let address: string;
let dir: string;
const transports: Transport[] = [];

function client(environment = "default"): ImageClient {
  const transport = createTransport({ address, environment });
  transports.push(transport);
  return new ImageClient({ transport });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "chalk-image-svc-"));
  server = await listen({
    address: "127.0.0.1:0",
    register: (s) => addService(s, ImageService, imageServiceImpl(ctx.h.builder)),
  });
  address = server.address;
});

afterAll(async () => {
  for (const t of transports) t.close();
  server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("ImageService through ImageClient", () => {
  test("getOrBuild streams step boundaries and output, then the image; a second call finds it", async () => {
    await writeFile(join(dir, "app.py"), "print('from the image')\n");
    const image = Image.debianSlim("3.11")
      .addLocalFile(join(dir, "app.py"), "/app/app.py", { strategy: "copy" })
      .runCommands("echo building on the server; python /app/app.py");
    const events: ImageBuildEvent[] = [];
    const built = await client().getOrBuild(image, { onEvent: (e) => events.push(e) });
    expect(built.status).toBe("succeeded");
    expect(built.specDigest).toBe(await image.digest());
    expect(built.imageUri).toBe(`local/chalk/images@${built.manifestDigest}`);
    expect(built.layerCount).toBe(3);
    const kinds = events.map((e) => (e.type === "log" ? `log:${e.step}` : `${e.type}:${e.index}`));
    expect(kinds.slice(0, 2)).toEqual(["step:0", "step-done:0"]);
    expect(kinds).toContain("step:2");
    expect(kinds.at(-1)).toBe("step-done:2");
    const output = events.map((e) => (e.type === "log" && e.step === 2 ? e.text : "")).join("");
    expect(output).toBe("building on the server\nfrom the image\n");

    const again: ImageBuildEvent[] = [];
    const cached = await client().getOrBuild(image, { onEvent: (e) => again.push(e) });
    expect(cached).toMatchObject({ status: "exists", manifestDigest: built.manifestDigest });
    expect(again).toEqual([]);
    expect(await client().status(image)).toMatchObject({ status: "exists", imageUri: built.imageUri });
  });

  test("a failed build streams its log, then fails with failed_precondition; status says failed", async () => {
    const image = Image.debianSlim("3.11").runCommands("echo something broke >&2; exit 3");
    const events: ImageBuildEvent[] = [];
    const err = await client()
      .getOrBuild(image, { onEvent: (e) => events.push(e) })
      .catch((e: unknown) => e as ChalkError);
    expect(err).toBeInstanceOf(ChalkError);
    expect((err as ChalkError).code).toBe(Code.FailedPrecondition);
    expect((err as ChalkError).message).toContain("image build failed at step 1");
    expect(
      events.some((e) => e.type === "log" && e.stream === "stderr" && e.text.includes("something broke")),
    ).toBe(true);
    const status = await client().status(await image.digest());
    expect(status.status).toBe("failed");
    expect(status.message).toContain("exited with code 3");
  });

  test("status is building while a build runs", async () => {
    const image = Image.debianSlim("3.11").runCommands("echo running; sleep 2");
    let seen: string | undefined;
    const statusChecked = new Promise<void>((resolve) => {
      void client()
        .getOrBuild(image, {
          onEvent: (e) => {
            if (e.type === "log" && e.text.includes("running") && seen === undefined) {
              seen = "pending";
              void client()
                .status(image)
                .then((s) => {
                  seen = s.status;
                  resolve();
                });
            }
          },
        })
        .catch(() => resolve());
    });
    await statusChecked;
    expect(seen).toBe("building");
    await client().getOrBuild(image);
  });

  test("unknown digests are not found; malformed ones and specs are invalid arguments naming the field", async () => {
    const missing = await client()
      .status(`sha256:${"0".repeat(64)}`)
      .catch((e: unknown) => e as ChalkError);
    expect((missing as ChalkError).code).toBe(Code.NotFound);
    const bad = await client()
      .status("sha256:nope")
      .catch((e: unknown) => e as ChalkError);
    expect((bad as ChalkError).code).toBe(Code.InvalidArgument);
    const spec = await Image.debianSlim("3.11").toSpec();
    spec.steps.push(
      create(StepSchema, { kind: { case: "aptInstall", value: { packages: ["-y; reboot"] } } }),
    );
    // The SDK refuses before sending; the server refuses a raw request the same way.
    const local = await client()
      .getOrBuild(spec)
      .catch((e: unknown) => e as ChalkError);
    expect((local as ChalkError).message).toContain("spec.steps[0].apt_install.packages[0]");
    const rawTransport = createTransport({ address });
    transports.push(rawTransport);
    const raw = createClient(ImageService, rawTransport);
    const remote = await (async () => {
      for await (const _ of raw.getOrBuild({ spec }));
    })().catch((e: unknown) => e as ChalkError);
    expect((remote as ChalkError).code).toBe(Code.InvalidArgument);
    expect((remote as ChalkError).message).toContain("spec.steps[0].apt_install.packages[0]");
  });

  test("list shows an environment the images it asked for, newest first, in pages", async () => {
    const a = client("team-a");
    const b = client("team-b");
    const one = await a.getOrBuild(Image.debianSlim("3.11").env({ WHO: "one" }));
    const two = await a.getOrBuild(Image.debianSlim("3.11").env({ WHO: "two" }));
    const first = await a.list({ pageSize: 1 });
    expect(first.images.map((i) => i.specDigest)).toEqual([two.specDigest]);
    const second = await a.list({ pageSize: 1, pageToken: first.nextPageToken });
    expect(second.images.map((i) => i.specDigest)).toEqual([one.specDigest]);
    expect((await b.list()).images).toEqual([]);
  });
});
