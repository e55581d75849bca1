/**
 * The minimal inputs of issue 10's "Bad input at the edge", each as a regression test against a real
 * server: every one must be refused with invalid_argument that names the field, before any work.
 * The container inputs are refused by `@chalk/spec` (for RunContainer and CreateContainer alike),
 * the image spec's by `@chalk/image`'s spec check, which `@chalk/spec` applies to a container's
 * image spec too. The kinds behind them are covered by the unit tests of those packages and by
 * `bad-input-fuzz.test.ts`.
 */

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { ChalkError, Code } from "@chalk/core";
import { ContainerService } from "@chalk/proto/container/v1";
import { FileKind, ImageService, ImageSpecSchema } from "@chalk/proto/image/v1";
import { SandboxService } from "@chalk/proto/sandbox/v1";
import { SecretService } from "@chalk/proto/secrets/v1";
import { createClient } from "@chalk/rpc";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { removeDataDir, type ServerProcess, startServerProcess } from "../src/server-process.js";

const rootfs = execFileSync("bash", [join(import.meta.dirname, "../../../tooling/scripts/rootfs.sh")], {
  encoding: "utf8",
}).trim();

let server: ServerProcess;
beforeAll(async () => {
  server = await startServerProcess({ args: ["--rootfs-image", `minbase=${rootfs}`] });
});
afterAll(async () => {
  if (!server) return;
  try {
    const containers = createClient(ContainerService, server.transport());
    for (const c of (await containers.listContainers({})).containers) {
      await containers.stopContainer({ ref: { case: "id", value: c.id } }).catch(() => undefined);
    }
    await server.kill();
  } finally {
    await removeDataDir(server.dataDir);
  }
});

async function refusal(call: () => Promise<unknown>): Promise<ChalkError> {
  try {
    await call();
  } catch (err) {
    if (err instanceof ChalkError) return err;
    throw err;
  }
  throw new Error("the request was accepted");
}

async function runContainer(spec: Parameters<ReturnType<typeof containerClient>["runContainer"]>[0]["spec"]) {
  for await (const _ of containerClient().runContainer({ spec })) {
    // Drain: the run ends with the container's record or an error.
  }
}
const containerClient = () => createClient(ContainerService, server.transport());

describe("bad input at the edge: the issue's minimal inputs", () => {
  test("a malformed protobuf body is invalid_argument naming the request, not internal", async () => {
    const raw = new grpc.Client(server.address, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${server.token}`);
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      raw.makeUnaryRequest(
        "/chalk.container.v1.ContainerService/GetContainer",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from([0x0a, 0x7f, 0x61]),
        md,
        resolve,
      ),
    );
    raw.close();
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(
      /^\[invalid_argument\] request: not a valid chalk\.container\.v1\.GetContainerRequest/,
    );
  });

  test.each([
    ["a base64 offset past 2^63", Buffer.from("100000000000000000000").toString("base64url")],
    ["a negative offset", Buffer.from("-1").toString("base64url")],
    ["digits then garbage", Buffer.from("12abc").toString("base64url")],
    ["not base64 at all", "garbage page token!"],
  ])("ListImages with a garbage page_token (%s) is invalid_argument", async (_what, pageToken) => {
    const err = await refusal(() => createClient(ImageService, server.transport()).listImages({ pageToken }));
    expect(err).toMatchObject({ code: Code.InvalidArgument, field: "page_token" });
  });

  test.each(["a\0b", "\0", "value\0"])(
    "SetSecret with a NUL byte in the value (%j) is invalid_argument",
    async (value) => {
      const secrets = createClient(SecretService, server.transport());
      const err = await refusal(() => secrets.setSecret({ name: "NUL_VALUE", value }));
      expect(err).toMatchObject({ code: Code.InvalidArgument, field: "value" });
      expect(err.message).not.toContain(value);
      // Nothing was stored.
      expect((await secrets.listSecrets({})).secrets.map((s) => s.name)).not.toContain("NUL_VALUE");
    },
  );

  test.each([0, 32, 39, 64, 65, -1])(
    "SignalSandbox with signal %i (none, or real-time, which runsc cannot deliver) is invalid_argument, not internal",
    async (signal) => {
      const sandboxes = createClient(SandboxService, server.transport());
      const err = await refusal(() => sandboxes.signalSandbox({ id: "any-sandbox", signal }));
      expect(err).toMatchObject({ code: Code.InvalidArgument, field: "signal" });
    },
  );

  test("SetIntegration with a NUL byte in a value is invalid_argument naming the key", async () => {
    const secrets = createClient(SecretService, server.transport());
    const err = await refusal(() => secrets.setIntegration({ name: "db", values: { PASSWORD: "p\0w" } }));
    expect(err).toMatchObject({ code: Code.InvalidArgument, field: "values.PASSWORD" });
  });

  /** Refused by RunContainer and by CreateContainer alike, and nothing is recorded by either. */
  async function refusedEverywhere(spec: Parameters<typeof runContainer>[0]): Promise<ChalkError[]> {
    const errors = [
      await refusal(() => runContainer(spec)),
      await refusal(() => containerClient().createContainer({ spec })),
    ];
    expect((await containerClient().listContainers({})).containers.map((c) => c.name)).not.toContain(
      spec?.name,
    );
    return errors;
  }

  test.each(["ïmage", "../../etc"])(
    "RunContainer and CreateContainer with image %j are invalid_argument",
    async (uri) => {
      for (const err of await refusedEverywhere({
        name: "bad-image",
        image: { source: { case: "uri", value: uri } },
      })) {
        expect(err).toMatchObject({ code: Code.InvalidArgument, field: "spec.image.uri" });
      }
    },
  );

  test.each([" 1Gi", "1Gi ", "1 Gi", "1Gi\n"])(
    "RunContainer and CreateContainer with memory %j are invalid_argument",
    async (memory) => {
      for (const err of await refusedEverywhere({
        name: "bad-memory",
        image: { source: { case: "uri", value: "minbase" } },
        memory,
      })) {
        expect(err).toMatchObject({ code: Code.InvalidArgument, field: "spec.memory" });
      }
    },
  );

  const addFiles = (file: { sizeBytes: bigint; content?: Uint8Array }) => {
    const sha256 = createHash("sha256").update("hello\n").digest("hex");
    return create(ImageSpecSchema, {
      base: { source: { case: "debianSlim", value: { pythonVersion: "3.11" } } },
      steps: [
        {
          kind: {
            case: "addFiles",
            value: { files: [{ path: "/app/x", kind: FileKind.REGULAR, mode: 0o644, sha256, ...file }] },
          },
        },
      ],
    });
  };

  test.each([
    ["a size but no content", { sizeBytes: 6n }],
    ["content of another size", { sizeBytes: 7n, content: new TextEncoder().encode("hello\n") }],
    [
      "content that does not match its sha256",
      { sizeBytes: 6n, content: new TextEncoder().encode("HELLO\n") },
    ],
  ])("GetOrBuild with add_files that have %s is invalid_argument before any build", async (_what, file) => {
    const images = createClient(ImageService, server.transport());
    const before = (await images.listImages({})).images.length;
    const err = await refusal(async () => {
      for await (const _ of images.getOrBuild({ spec: addFiles(file) })) {
        // A build would stream its log here.
      }
    });
    expect(err).toMatchObject({
      code: Code.InvalidArgument,
      field: "spec.steps[0].add_files.files[0].content",
    });
    // No build was started or recorded.
    expect((await images.listImages({})).images).toHaveLength(before);
  });

  test("a container whose image spec has add_files without content is invalid_argument naming the file", async () => {
    const spec = toBinary(ImageSpecSchema, addFiles({ sizeBytes: 6n }));
    for (const err of await refusedEverywhere({
      name: "bad-files",
      image: { source: { case: "spec", value: spec } },
    })) {
      expect(err).toMatchObject({
        code: Code.InvalidArgument,
        field: "spec.image.spec.steps[0].add_files.files[0].content",
      });
    }
  });
});
