/**
 * Bad input at the edge, property-based (fast-check): for every RPC the server serves (found by
 * reflection, so new RPCs are covered automatically), hostile messages built from the protobuf
 * descriptors and malformed bodies go to a real server on real runsc. No answer may be internal (or
 * unknown), the server keeps serving and logs no fatal line, and once the test has removed what its
 * requests legitimately made, nothing is left: no running sandbox, volume, secret, integration,
 * active container, stray file in the data dir, or temporary file.
 *
 * The count of generated cases is printed. Knobs: CHALK_FUZZ_SEED (default: random, printed),
 * CHALK_FUZZ_RUNS (well-formed cases per RPC, default 120; malformed bodies: half as many).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  toBinary,
} from "@bufbuild/protobuf";
import { ContainerService } from "@chalk/proto/container/v1";
import { SecretService } from "@chalk/proto/secrets/v1";
import { VolumeService } from "@chalk/proto/volume/v1";
import { createClient } from "@chalk/rpc";
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { removeDataDir, type ServerProcess, startServerProcess } from "../src/server-process.js";
import { acceptValues, embedMessage, messageBytes } from "./fuzz/message-arbitrary.js";
import { RawClient, type RawOutcome } from "./fuzz/raw-call.js";
import { servedSchemas } from "./fuzz/served-schemas.js";
import { malformedBytes } from "./fuzz/wire-arbitrary.js";

const SEED = Number(process.env.CHALK_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const RUNS = Number(process.env.CHALK_FUZZ_RUNS ?? 120);
const ENVIRONMENT = "fuzz";
/** A call that takes longer gives up with deadline_exceeded (e.g. a build or a wait it started). */
const CALL_DEADLINE_MS = 20_000;

const rootfs = execFileSync("bash", [join(import.meta.dirname, "../../../tooling/scripts/rootfs.sh")], {
  encoding: "utf8",
}).trim();

let server: ServerProcess;
let raw: RawClient;
let serverTmp: string;
let schemas: Awaited<ReturnType<typeof servedSchemas>>;
let baseline: Set<string>;
/** What the server's TMPDIR held once it listened (tsx's compile cache when run from source). */
let tmpBaseline: string[];
const counts = { generated: 0, sent: 0 };
const codes = new Map<string, number>();
/** The first message seen per RPC and code, printed at the end. */
const examples = new Map<string, string>();
/** Milliseconds spent per RPC, printed at the end. */
const timings = new Map<string, number>();
/** Each property runs hundreds of real calls, some of which build images or start sandboxes. */
const LONG = 30 * 60_000;

/** Files under `dir`, relative, skipping what changes by design (databases, image store, logs). */
function tree(dir: string): Set<string> {
  const out = new Set<string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const rel = relative(dir, p);
      if (/^(chalk\.db|secrets\.db)/.test(rel) || rel.startsWith("images") || rel === "tls") continue;
      out.add(e.isDirectory() ? `${rel}/` : rel);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

beforeAll(async () => {
  serverTmp = mkdtempSync(join(tmpdir(), "chalk-fuzz-tmp-"));
  server = await startServerProcess({
    args: ["--rootfs-image", `minbase=${rootfs}`],
    env: { TMPDIR: serverTmp },
  });
  raw = new RawClient(server.address, server.token);
  schemas = await servedSchemas(server.address);
  await makeTargets();
  const spec = schemas.registry.getMessage("chalk.image.v1.ImageSpec");
  if (spec) embedMessage("chalk.container.v1.ImageSource.spec", () => spec);
  baseline = tree(server.dataDir);
  tmpBaseline = readdirSync(serverTmp);
  console.log(
    `bad-input fuzz: seed ${SEED}, ${RUNS} well-formed and ${Math.ceil(RUNS / 2)} malformed cases per RPC`,
  );
});

afterAll(async () => {
  raw?.close();
  try {
    await server?.kill();
  } finally {
    if (server) await removeDataDir(server.dataDir);
    if (serverTmp) rmSync(serverTmp, { recursive: true, force: true });
  }
});

/** The request stream of a method: one message, or for client streams up to three. */
function requestsOf(method: DescMethod, one: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array[]> {
  const streaming = method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming";
  return streaming ? fc.array(one, { minLength: 0, maxLength: 3 }) : one.map((m) => [m]);
}

/** Mostly the fuzz environment; sometimes a header value that is not an environment name. */
const environment = fc.oneof(
  { weight: 19, arbitrary: fc.constant(ENVIRONMENT) },
  { weight: 1, arbitrary: fc.constantFrom("..", "Fuzz", "a".repeat(64), "-x", "a/b", " ") },
);

async function serving(): Promise<boolean> {
  const res = await raw.call(
    schemas.registry
      .getService("chalk.volume.v1.VolumeService")
      ?.methods.find((m) => m.name === "ListVolumes") ?? (undefined as never),
    [new Uint8Array()],
    ENVIRONMENT,
    10_000,
  );
  return res.code === grpc.status.OK;
}

/** Sends one case; fails it when the answer is internal or unknown, or the server stopped serving. */
async function check(method: DescMethod, requests: Uint8Array[], env: string): Promise<void> {
  counts.sent++;
  const out: RawOutcome = await raw.call(method, requests, env, CALL_DEADLINE_MS);
  const key = `${method.parent.name}/${method.name} ${grpc.status[out.code]}`;
  codes.set(key, (codes.get(key) ?? 0) + 1);
  if (!examples.has(key)) examples.set(key, out.details.slice(0, 160));
  if (out.code === grpc.status.INTERNAL || out.code === grpc.status.UNKNOWN) {
    throw new Error(`${method.name} answered ${grpc.status[out.code]}: ${out.details}`);
  }
  if (out.code === grpc.status.UNAVAILABLE && !(await serving())) {
    throw new Error(`the server stopped serving after ${method.name}: ${out.details}`);
  }
  if (server.exitCode !== null) throw new Error(`the server exited with ${server.exitCode}`);
}

/** Runs a property over `arb` for `method`; on failure reports the shrunk case, in hex. */
async function fuzz(method: DescMethod, arb: fc.Arbitrary<[Uint8Array[], string]>, numRuns: number) {
  const started = performance.now();
  const result = await fc.check(
    fc.asyncProperty(arb, ([requests, env]) => check(method, requests, env)),
    { numRuns, seed: SEED, endOnFailure: false, maxSkipsPerRun: 0, markInterruptAsFailure: false },
  );
  counts.generated += result.numRuns;
  timings.set(method.name, (timings.get(method.name) ?? 0) + performance.now() - started);
  if (result.failed) {
    const [requests, env] = result.counterexample?.[0] ?? [[], ""];
    const shown = requests.map((r) => Buffer.from(r).subarray(0, 512).toString("hex"));
    expect.fail(
      `${method.parent.typeName}/${method.name} (seed ${SEED}, path ${result.counterexamplePath}): ${
        result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance)
      }\n  environment ${JSON.stringify(env)}, request bytes (hex, first 512): ${JSON.stringify(shown)}`,
    );
  }
}

function methods(): DescMethod[] {
  return schemas.services
    .filter((s: DescService) => s.typeName.startsWith("chalk."))
    .flatMap((s) => s.methods);
}

describe("bad input at the edge", () => {
  test("reflection lists the Chalk services, and each is fuzzed", () => {
    const chalk = schemas.names.filter((n) => n.startsWith("chalk."));
    expect(chalk.sort()).toEqual(
      schemas.services
        .map((s) => s.typeName)
        .filter((n) => n.startsWith("chalk."))
        .sort(),
    );
    expect(chalk.length).toBeGreaterThanOrEqual(5);
    expect(methods().length).toBeGreaterThanOrEqual(31);
  });

  test(
    "well-formed hostile messages never get internal, for every RPC",
    async () => {
      for (const method of methods()) {
        await fuzz(method, fc.tuple(requestsOf(method, messageBytes(method.input)), environment), RUNS);
      }
    },
    LONG,
  );

  test(
    "malformed bodies get invalid_argument (never internal), for every RPC",
    async () => {
      for (const method of methods()) {
        const one = malformedBytes(method.input);
        await fuzz(method, fc.tuple(requestsOf(method, one), environment), Math.ceil(RUNS / 2));
      }
    },
    LONG,
  );

  test("the server still serves and logged no fatal line", async () => {
    expect(await serving()).toBe(true);
    expect(server.exitCode).toBeNull();
    expect(server.fatalLogs()).toEqual([]);
    const byCode = [...codes.entries()].sort();
    console.log(
      `bad-input fuzz: ${counts.generated} generated cases (${counts.sent} calls with shrinking), seed ${SEED}\n` +
        byCode.map(([k, n]) => `  ${k}: ${n}  e.g. ${JSON.stringify(examples.get(k) ?? "")}`).join("\n") +
        `\n  time per RPC (s): ${[...timings].map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)}`).join(", ")}`,
    );
    expect(counts.generated).toBeGreaterThan(0);
  });

  test("once the requests' own objects are removed, nothing is left behind", { timeout: LONG }, async () => {
    // Calls that gave up at their deadline may have left work running on the server (a build, a
    // container start); it finishes on its own. Clean up and look again until nothing is left, for
    // up to three minutes: what remains after that was leaked.
    const settle = { timeout: 180_000, interval: 2_000 };
    await expect
      .poll(async () => {
        await removeEverything();
        return leftovers();
      }, settle)
      .toEqual({ containers: [], sandboxes: [], volumes: [], secrets: [], integrations: [] });
    await expect
      .poll(() => readdirSync(serverTmp).filter((f) => !tmpBaseline.includes(f)), settle)
      .toEqual([]);
    await expect
      .poll(() => [...tree(server.dataDir)].filter((p) => !baseline.has(p) && !isKeptByDesign(p)), settle)
      .toEqual([]);
  });
});

/**
 * What the server keeps by design: a finished container's log (within the log bound and retention),
 * and the (empty) directories of each environment's volumes and of their quota file systems' images.
 */
function isKeptByDesign(path: string): boolean {
  return (
    /^logs\//.test(path) ||
    REACHABLE.some((env) => path === `volumes/volumes/${env}/` || path === `volumes/disks/${env}/`)
  );
}

/**
 * Objects for requests to find, so that they reach past "not found": a volume with a file, a secret,
 * an integration, and a running container (whose id and sandbox id join the accepted values).
 */
async function makeTargets(): Promise<void> {
  const t = server.transport(ENVIRONMENT);
  await createClient(VolumeService, t).createVolume({ name: "fuzz-a" });
  await createClient(VolumeService, t).putFile(
    (async function* () {
      yield { message: { case: "header" as const, value: { volumeName: "fuzz-a", path: "data/x.txt" } } };
      yield { message: { case: "data" as const, value: new TextEncoder().encode("x") } };
    })(),
  );
  await createClient(SecretService, t).setSecret({ name: "FUZZ_A", value: "not-a-real-secret" });
  await createClient(SecretService, t).setIntegration({ name: "fuzz_a", values: { K: "v" } });
  let container: { id: string; sandboxId: string } | undefined;
  for await (const ev of createClient(ContainerService, t).runContainer({
    spec: { name: "fuzz-a", image: { source: { case: "uri", value: "minbase" } } },
  })) {
    if (ev.event.case === "container") container = ev.event.value;
  }
  if (!container) throw new Error("the target container did not start");
  acceptValues("id", [container.id, container.sandboxId]);
  acceptValues("sandbox_id", [container.sandboxId]);
}

// ——— Cleanup and leftovers, through the API (only the fuzz environment is a valid one) ———

function method(service: string, name: string): DescMethod {
  const m = schemas.registry.getService(service)?.methods.find((x) => x.name === name);
  if (!m) throw new Error(`no ${service}/${name}`);
  return m;
}

/** A unary call with a real message; resolves to the decoded response (or throws the status). */
async function call<T>(service: string, name: string, init: object, env = ENVIRONMENT): Promise<T> {
  const m = method(service, name);
  const body = toBinary(m.input, create(m.input, init as never));
  const res = await new Promise<{ code: number; details: string; data?: Buffer }>((resolve) => {
    const c = new grpc.Client(server.address, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${server.token}`);
    md.set("x-chalk-environment", env);
    c.makeUnaryRequest(
      `/${service}/${name}`,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(body),
      md,
      (err, data) => {
        c.close();
        resolve({
          code: err?.code ?? 0,
          details: err?.details ?? "",
          ...(data === undefined ? {} : { data }),
        });
      },
    );
  });
  if (res.code !== 0) throw new Error(`${name}: ${grpc.status[res.code]} ${res.details}`);
  return fromBinary(m.output as DescMessage, res.data ?? Buffer.alloc(0)) as T;
}

interface Leftovers {
  containers: string[];
  sandboxes: string[];
  volumes: string[];
  secrets: string[];
  integrations: string[];
}

/**
 * The environments requests can land in: the fuzz one, and "default", which a blank header means
 * (grpc-js trims header values, so a header of spaces is no header).
 */
const REACHABLE = [ENVIRONMENT, "default"];

async function leftoversIn(env: string): Promise<Leftovers> {
  const list = <T>(service: string, name: string, init: object) => call<T>(service, name, init, env);
  const containers = await list<{ containers: { name: string; status: number }[] }>(
    "chalk.container.v1.ContainerService",
    "ListContainers",
    { limit: 1000 },
  );
  const sandboxes = await list<{ sandboxes: { id: string; state: number }[] }>(
    "chalk.sandbox.v1.SandboxService",
    "ListSandboxes",
    {},
  );
  const volumes = await list<{ volumes: { name: string }[] }>(
    "chalk.volume.v1.VolumeService",
    "ListVolumes",
    {
      pageSize: 1000,
    },
  );
  const secrets = await list<{ secrets: { name: string }[] }>(
    "chalk.secrets.v1.SecretService",
    "ListSecrets",
    {
      pageSize: 1000,
    },
  );
  const integrations = await list<{ integrations: { name: string }[] }>(
    "chalk.secrets.v1.SecretService",
    "ListIntegrations",
    { pageSize: 1000 },
  );
  return {
    // Pending (1), Running (2) and Unknown (6) are active.
    containers: containers.containers.filter((c) => [1, 2, 6].includes(c.status)).map((c) => c.name),
    // Every sandbox, stopped ones too: a sandbox whose init ended (under the reaping init, also one
    // whose program does not exist) keeps its state and exit status until StopSandbox removes it.
    sandboxes: sandboxes.sandboxes.map((s) => s.id),
    volumes: volumes.volumes.map((v) => v.name),
    secrets: secrets.secrets.map((s) => s.name),
    integrations: integrations.integrations.map((i) => i.name),
  };
}

/** What is left in every reachable environment, as `env/name`. */
async function leftovers(): Promise<Leftovers> {
  const all: Leftovers = { containers: [], sandboxes: [], volumes: [], secrets: [], integrations: [] };
  for (const env of REACHABLE) {
    const l = await leftoversIn(env);
    for (const k of Object.keys(all) as (keyof Leftovers)[]) all[k].push(...l[k].map((n) => `${env}/${n}`));
  }
  return all;
}

/** Stops and deletes what the fuzz requests made (containers, sandboxes, volumes, secrets). */
async function removeEverything(): Promise<void> {
  for (const env of REACHABLE) {
    const req = (service: string, name: string, init: object) => call(service, name, init, env);
    const left = await leftoversIn(env);
    for (const name of left.containers) {
      await req("chalk.container.v1.ContainerService", "StopContainer", {
        ref: { case: "name", value: name },
      });
    }
    for (const id of left.sandboxes) await req("chalk.sandbox.v1.SandboxService", "StopSandbox", { id });
    for (const name of left.secrets) await req("chalk.secrets.v1.SecretService", "DeleteSecret", { name });
    for (const name of left.integrations)
      await req("chalk.secrets.v1.SecretService", "DeleteIntegration", { name });
    // Volumes last: a stopped container's upload volume goes with the container.
    for (const name of (await leftoversIn(env)).volumes) {
      await req("chalk.volume.v1.VolumeService", "DeleteVolume", { name });
    }
  }
}
