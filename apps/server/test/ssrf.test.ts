/**
 * Server-side requests go only to registries the configuration names (issue 8, finding 5): an image
 * reference or a registry base on any other host (loopback, IP literals, another port of an allowed
 * host, random names) is refused with invalid_argument naming the field, before any request is sent.
 * A real loopback listener stands in for an internal service and must see no connection at all.
 */

import { execFileSync } from "node:child_process";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { Image, ImageClient } from "@chalk/image";
import { ContainerService } from "@chalk/proto/container/v1";
import { createClient } from "@chalk/rpc";
import { connectSandboxes } from "@chalk/sandbox";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { removeDataDir, type ServerProcess, startServerProcess } from "../src/server-process.js";

const rootfs = execFileSync("bash", [join(import.meta.dirname, "../../../tooling/scripts/rootfs.sh")], {
  encoding: "utf8",
}).trim();

/** A registry the server may contact; nothing listens there, and no test reference names it. */
const ALLOWED = "registry.chalk.invalid:5000";

let server: ServerProcess;
let listener: Server;
let port = 0;
let connections = 0;

beforeAll(async () => {
  listener = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  port = (listener.address() as { port: number }).port;
  server = await startServerProcess({
    args: ["--rootfs-image", `minbase=${rootfs}`, "--allow-registry", ALLOWED],
  });
});

afterAll(async () => {
  await server?.kill();
  if (server) await removeDataDir(server.dataDir);
  await new Promise((resolve) => listener?.close(resolve));
});

async function errorOf(p: Promise<unknown>): Promise<ChalkError> {
  try {
    await p;
  } catch (err) {
    return ChalkError.from(err);
  }
  throw new Error("expected an error");
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    // only the outcome matters
  }
}

/** Every RPC that takes an image reference or a registry base, with `reference`. */
async function refusals(reference: string): Promise<{ route: string; err: ChalkError }[]> {
  const containers = createClient(ContainerService, server.transport());
  const name = `ssrf-${Math.random().toString(36).slice(2, 8)}`;
  const uriSpec = { name, image: { source: { case: "uri" as const, value: reference } } };
  const baseSpec = {
    name,
    image: { source: { case: "spec" as const, value: await Image.fromRegistry(reference).toSpecBytes() } },
  };
  const images = new ImageClient({ transport: server.transport() });
  const sandboxes = connectSandboxes({ transport: server.transport() });
  return [
    {
      route: "RunContainer image uri",
      err: await errorOf(drain(containers.runContainer({ spec: uriSpec }))),
    },
    { route: "CreateContainer image uri", err: await errorOf(containers.createContainer({ spec: uriSpec })) },
    {
      route: "RunContainer registry base",
      err: await errorOf(drain(containers.runContainer({ spec: baseSpec }))),
    },
    {
      route: "CreateContainer registry base",
      err: await errorOf(containers.createContainer({ spec: baseSpec })),
    },
    {
      route: "GetOrBuild registry base",
      err: await errorOf(images.getOrBuild(Image.fromRegistry(reference))),
    },
    { route: "CreateSandbox image", err: await errorOf(sandboxes.create({ image: reference })) },
  ];
}

const FIELDS: Record<string, RegExp> = {
  "RunContainer image uri": /^spec\.image\.uri$/,
  "CreateContainer image uri": /^spec\.image\.uri$/,
  "RunContainer registry base": /^spec\.image\.spec\.base\.registry\.reference$/,
  "CreateContainer registry base": /^spec\.image\.spec\.base\.registry\.reference$/,
  "GetOrBuild registry base": /^spec\.base\.registry\.reference$/,
  "CreateSandbox image": /^spec\.image$/,
};

function expectRefused(results: { route: string; err: ChalkError }[], reference: string): void {
  for (const { route, err } of results) {
    expect(err.code, `${route} ${reference}: ${err.message}`).toBe(Code.InvalidArgument);
    expect(err.field, `${route} ${reference}`).toMatch(FIELDS[route] as RegExp);
    expect(err.message).toMatch(/is not one this server may contact/);
  }
}

describe("image references reach only configured registries", () => {
  test("the minimal input: 127.0.0.1:PORT/internal/admin:latest never reaches the loopback listener", async () => {
    const reference = `127.0.0.1:${port}/internal/admin:latest`;
    expectRefused(await refusals(reference), reference);
    expect(connections).toBe(0);
  });

  test("random hosts (loopback names, IP literals, ports, another port of the allowed host) are refused on every route, and nothing is contacted or left", async () => {
    const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join("."));
    const host = fc.oneof(
      fc.constant("localhost"),
      fc.constant("127.0.0.1"),
      fc.constant("[::1]"),
      fc.constant("registry.chalk.invalid"),
      ipv4,
      fc
        .array(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/), { minLength: 2, maxLength: 4 })
        .map((labels) => labels.join(".")),
    );
    const hostPort = fc
      .tuple(host, fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }))
      .map(([h, p]) => (p === undefined ? h : `${h}:${p}`))
      .filter((h) => h.toLowerCase() !== ALLOWED);
    const reference = fc
      .tuple(
        hostPort,
        fc.constantFrom("internal/admin", "app", "a/b/c"),
        fc.constantFrom(":latest", ":v1", ""),
      )
      .map(([h, repo, tag]) => `${h}/${repo}${tag}`);
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(reference, async (ref) => {
        runs++;
        expectRefused(await refusals(ref), ref);
      }),
      { numRuns: 40, seed: Number(process.env.CHALK_FUZZ_SEED ?? Date.now() % 2 ** 31) },
    );
    // Including the listener's own port, through every route: not one connection.
    const own = `localhost:${port}/x:latest`;
    expectRefused(await refusals(own), own);
    expect(runs).toBe(40);
    expect(connections).toBe(0);
    // Nothing half-made: no container was accepted, no sandbox created.
    const containers = createClient(ContainerService, server.transport());
    expect((await containers.listContainers({})).containers).toEqual([]);
    expect(await connectSandboxes({ transport: server.transport() }).list()).toEqual([]);
  });

  test("a reference on the allowed registry, or without a host, passes the check (and fails later only for reaching nothing)", async () => {
    const sandboxes = connectSandboxes({ transport: server.transport() });
    const err = await errorOf(sandboxes.create({ image: `${ALLOWED}/app:latest` }));
    expect(err.code).not.toBe(Code.InvalidArgument);
    expect(err.code).not.toBe(Code.Internal);
    // minbase is the operator's image: no registry involved.
    const s = await sandboxes.create({ image: "minbase" });
    await s.stop();
    expect(connections).toBe(0);
  });
});
