/**
 * Malformed requests sent straight to a real server process (bypassing the SDK's own checks): each
 * gets the right typed error, and the server keeps serving afterwards.
 */
import { availableParallelism } from "node:os";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ChalkError, Code } from "@chalk/core";
import { ContainerService, type ContainerSpecSchema } from "@chalk/proto/container/v1";
import { type Client, createClient, createTransport } from "@chalk/rpc";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Container } from "../src/index.js";
import { removeDataDir, type ServerProcess, startServerProcess } from "./server.js";

type Spec = MessageInitShape<typeof ContainerSpecSchema>;

let server: ServerProcess;
let client: Client<typeof ContainerService>;

beforeAll(async () => {
  server = await startServerProcess();
  client = createClient(ContainerService, server.transport());
});

afterAll(async () => {
  try {
    await server?.kill();
  } finally {
    if (server) await removeDataDir(server.dataDir);
  }
});

const ok: Spec = { name: "bad-input", image: { source: { case: "uri", value: "chalk/none" } } };
const spec = (over: Partial<Spec>): Spec => ({ ...ok, ...over }) as Spec;
/** The CPUs of this machine, the most the local backend gives a container. */
const cores = availableParallelism();
const unknownId = "550e8400-e29b-41d4-a716-446655440000";

async function codeOf(call: () => Promise<unknown> | AsyncIterable<unknown>): Promise<[Code, string]> {
  try {
    const r = call();
    if (r && typeof (r as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function") {
      for await (const _ of r as AsyncIterable<unknown>) {
        // drain
      }
    } else await r;
  } catch (err) {
    const e = ChalkError.from(err);
    return [e.code, e.message];
  }
  return [0 as Code, "no error"];
}

const run = (s: Spec | undefined) => () => client.runContainer(s ? { spec: s } : {});
const big = (n: number) => "x".repeat(n);

const cases: [string, () => Promise<unknown> | AsyncIterable<unknown>, Code, RegExp][] = [
  ["run without a spec", run(undefined), Code.InvalidArgument, /spec/],
  ["empty name", run(spec({ name: "" })), Code.InvalidArgument, /spec\.name/],
  ["upper-case name", run(spec({ name: "Bad_Name" })), Code.InvalidArgument, /spec\.name/],
  ["64-character name", run(spec({ name: big(64) })), Code.InvalidArgument, /spec\.name/],
  ["no image", run(spec({ image: {} })), Code.InvalidArgument, /spec\.image/],
  [
    "image reference with spaces",
    run(spec({ image: { source: { case: "uri", value: "a b" } } })),
    Code.InvalidArgument,
    /spec\.image/,
  ],
  [
    "empty image spec",
    run(spec({ image: { source: { case: "spec", value: new Uint8Array() } } })),
    Code.InvalidArgument,
    /spec\.image/,
  ],
  [
    "an image spec that does not decode",
    run(spec({ image: { source: { case: "spec", value: new Uint8Array([0xff, 0xff, 0xff]) } } })),
    Code.InvalidArgument,
    /spec\.image/,
  ],
  ["cpu that is not a quantity", run(spec({ cpu: "lots" })), Code.InvalidArgument, /cpu/],
  ["zero cpu", run(spec({ cpu: "0" })), Code.InvalidArgument, /cpu/],
  ["negative cpu", run(spec({ cpu: "-1" })), Code.InvalidArgument, /cpu/],
  ["memory with a wrong suffix", run(spec({ memory: "2GB" })), Code.InvalidArgument, /memory/],
  ["memory below the minimum", run(spec({ memory: "1" })), Code.InvalidArgument, /memory/],
  ["more memory than the machine has", run(spec({ memory: "1Pi" })), Code.FailedPrecondition, /memory/],
  [
    "more CPUs than the machine has",
    run(spec({ cpu: "512" })),
    Code.FailedPrecondition,
    /cpu: 512 CPUs requested, but the local backend gives a container at most \d+ CPUs/,
  ],
  [
    "a millicore more than the machine has",
    run(spec({ cpu: `${cores * 1000 + 1}m` })),
    Code.FailedPrecondition,
    /cpu/,
  ],
  ["a GPU on a machine without one", run(spec({ gpu: "nvidia-l4:1" })), Code.FailedPrecondition, /no GPU/],
  ["a malformed GPU", run(spec({ gpu: "a:b:c" })), Code.InvalidArgument, /gpu/],
  ["a GPU count of zero", run(spec({ gpu: "0" })), Code.InvalidArgument, /gpu/],
  ["an env name starting with a digit", run(spec({ env: { "1BAD": "x" } })), Code.InvalidArgument, /env/],
  ["an env value with a NUL byte", run(spec({ env: { A: "a\0b" } })), Code.InvalidArgument, /env\.A/],
  ["2 MiB of env", run(spec({ env: { A: big(2 * 1024 * 1024) } })), Code.InvalidArgument, /env/],
  ["a secret without a source", run(spec({ secrets: [{}] })), Code.InvalidArgument, /secrets\[0\]/],
  [
    "a secret with a bad name",
    run(spec({ secrets: [{ source: { case: "secret", value: { name: "bad-name" } } }] })),
    Code.InvalidArgument,
    /secrets\[0\]\.name/,
  ],
  [
    "a secret that does not exist",
    run(spec({ secrets: [{ source: { case: "secret", value: { name: "NOPE_SECRET" } } }] })),
    Code.NotFound,
    /secrets\[0\]: .*NOPE_SECRET/,
  ],
  [
    "a missing secret after one that exists is named by its place",
    run(
      spec({
        secrets: [
          { source: { case: "localEnv", value: { name: "HERE", value: "v" } } },
          { source: { case: "secret", value: { name: "NOPE_SECRET" } } },
        ],
      }),
    ),
    Code.NotFound,
    /secrets\[1\]: .*NOPE_SECRET/,
  ],
  [
    "an integration that does not exist",
    run(spec({ secrets: [{ source: { case: "integration", value: { name: "nope_db" } } }] })),
    Code.NotFound,
    /secrets\[0\]: .*nope_db/,
  ],
  [
    "a volume with a bad name",
    run(spec({ volumes: [{ name: "Bad!", mountPath: "/data" }] })),
    Code.InvalidArgument,
    /volumes\[0\]\.name/,
  ],
  [
    "a relative mount path",
    run(spec({ volumes: [{ name: "v", mountPath: "data" }] })),
    Code.InvalidArgument,
    /mount_path/,
  ],
  [
    "a mount on /proc",
    run(spec({ volumes: [{ name: "v", mountPath: "/proc" }] })),
    Code.InvalidArgument,
    /mount_path/,
  ],
  [
    "a mount path with ..",
    run(spec({ volumes: [{ name: "v", mountPath: "/a/../etc" }] })),
    Code.InvalidArgument,
    /mount_path/,
  ],
  [
    "two volumes on one path",
    run(
      spec({
        volumes: [
          { name: "a", mountPath: "/d" },
          { name: "b", mountPath: "/d" },
        ],
      }),
    ),
    Code.InvalidArgument,
    /mounted twice/,
  ],
  [
    "a volume that does not exist",
    run(spec({ volumes: [{ name: "no-such-volume", mountPath: "/data" }] })),
    Code.NotFound,
    /no-such-volume/,
  ],
  ["port 70000", run(spec({ port: 70000 })), Code.InvalidArgument, /port/],
  [
    "an entrypoint with an empty program",
    run(spec({ entrypoint: [""] })),
    Code.InvalidArgument,
    /entrypoint/,
  ],
  [
    "an entrypoint with a NUL byte",
    run(spec({ entrypoint: ["sh", "-c", "a\0"] })),
    Code.InvalidArgument,
    /entrypoint/,
  ],
  [
    "an entrypoint of 5000 arguments",
    run(spec({ entrypoint: Array(5000).fill("x") })),
    Code.InvalidArgument,
    /entrypoint/,
  ],
  [
    "an upload target that is relative",
    run(spec({ upload: { volumeName: "u", targets: [{ source: "a", target: "b" }] } })),
    Code.InvalidArgument,
    /upload/,
  ],
  [
    "an upload source escaping the volume",
    run(spec({ upload: { volumeName: "u", targets: [{ source: "../x", target: "/b" }] } })),
    Code.InvalidArgument,
    /upload/,
  ],
  ["get without an id or name", () => client.getContainer({}), Code.InvalidArgument, /ref/],
  [
    "get with an id that is not a UUID",
    () => client.getContainer({ ref: { case: "id", value: "../etc" } }),
    Code.InvalidArgument,
    /id/,
  ],
  [
    "get of an unknown id",
    () => client.getContainer({ ref: { case: "id", value: unknownId } }),
    Code.NotFound,
    /not found/,
  ],
  [
    "exec with an empty command",
    () => client.execContainer({ ref: { case: "id", value: unknownId }, command: [] }),
    Code.InvalidArgument,
    /command/,
  ],
  [
    "exec with a negative timeout",
    () => client.execContainer({ ref: { case: "id", value: unknownId }, command: ["ls"], timeoutSecs: -1 }),
    Code.InvalidArgument,
    /timeout_secs/,
  ],
  [
    "exec with 5 MiB of stdin",
    () =>
      client.execContainer({
        ref: { case: "id", value: unknownId },
        command: ["cat"],
        stdin: new Uint8Array(5 * 1024 * 1024),
      }),
    Code.InvalidArgument,
    /stdin/,
  ],
  [
    "exec with 9 MiB of stdin (over the message limit)",
    () =>
      client.execContainer({
        ref: { case: "id", value: unknownId },
        command: ["cat"],
        stdin: new Uint8Array(9 * 1024 * 1024),
      }),
    Code.ResourceExhausted,
    /./,
  ],
  [
    "exec in an unknown container",
    () => client.execContainer({ ref: { case: "name", value: "nobody" }, command: ["ls"] }),
    Code.NotFound,
    /nobody/,
  ],
  [
    "stop with a grace period of a day",
    () => client.stopContainer({ ref: { case: "name", value: "x" }, gracePeriodSeconds: 86400 }),
    Code.InvalidArgument,
    /grace_period_seconds/,
  ],
  [
    "stop of an unknown name",
    () => client.stopContainer({ ref: { case: "name", value: "nobody" } }),
    Code.NotFound,
    /nobody/,
  ],
  ["logs without an id or name", () => client.containerLogs({ follow: false }), Code.InvalidArgument, /ref/],
  ["list with a limit of 5000", () => client.listContainers({ limit: 5000 }), Code.InvalidArgument, /limit/],
];

describe("the server rejects malformed requests with typed errors", () => {
  test.each(cases)("%s", async (_name, call, code, message) => {
    const [got, text] = await codeOf(call);
    expect({ code: got, text }).toMatchObject({ code });
    expect(text).toMatch(message);
  });

  test("calls without a token, with a wrong token, or with a bad environment are refused", async () => {
    const as = (token: string | undefined, environment = "default") =>
      createClient(
        ContainerService,
        createTransport({ address: server.address, token: token ?? "", environment }),
      );
    expect((await codeOf(() => as(undefined).listContainers({})))[0]).toBe(Code.Unauthenticated);
    expect((await codeOf(() => as("wrong-token-wrong-token").listContainers({})))[0]).toBe(
      Code.Unauthenticated,
    );
    expect((await codeOf(() => as(server.token, "Bad!").listContainers({})))[0]).toBe(Code.InvalidArgument);
  });

  test("the SDK rejects the same inputs before sending anything", () => {
    const base = { image: "chalk/none", name: "sdk-check", transport: server.transport() };
    const bad: Record<string, unknown>[] = [
      { name: "Bad_Name" },
      { cpu: "lots" },
      { memory: "2GB" },
      { gpu: "x:y:z" },
      { env: { "1X": "a" } },
      { volumes: [["vol", "relative"]] },
      { port: 0.5 },
      { entrypoint: [] },
      { secrets: ["NOT_A_SECRET"] },
    ];
    for (const over of bad) {
      expect(() => new Container({ ...base, ...over } as never), JSON.stringify(over)).toThrow(
        /invalid_argument/,
      );
    }
  });

  test("the server still serves after every malformed request", async () => {
    const res = await client.listContainers({});
    expect(res.containers).toEqual([]);
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });
});
