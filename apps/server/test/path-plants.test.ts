/**
 * Randomised symlink and `..` plants against every path-taking RPC of a real server (issue 8): a
 * volume holds links a sandbox could have written (to /etc, to the data dir, to /, up and out of
 * the volume, inside it), and random paths through them are sent to each RPC that takes a path.
 * None reads, writes, lists or removes anything outside the volume. (Mount sources, the other
 * path-taking route, are randomised in `local-mounts.test.ts`; sandboxes take image references,
 * no paths, see `sandbox-service.test.ts`.)
 */
import {
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { VolumeService } from "@chalk/proto/volume/v1";
import { type Client, createClient } from "@chalk/rpc";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { removeDataDir, type ServerProcess, startServerProcess } from "../src/server-process.js";

const SECRET = "host-only-content\n";
const marker = `chalk-plant-${process.pid}-${Date.now()}`;
let server: ServerProcess;
let client: Client<typeof VolumeService>;
let hostFiles: string[];

beforeAll(async () => {
  server = await startServerProcess();
  client = createClient(VolumeService, server.transport());
  await client.createVolume({ name: "plants" });
  plant();
  // Files only the host has, at every place a link leads to.
  hostFiles = [join("/etc", marker), join(server.dataDir, marker), join("/", marker)];
  for (const f of hostFiles) writeFileSync(f, SECRET);
});

afterAll(async () => {
  for (const f of hostFiles ?? []) rmSync(f, { force: true });
  await server?.kill();
  if (server) await removeDataDir(server.dataDir);
});

/** (Re)plants what a sandbox that mounts the volume could have written; earlier cases may have removed it. */
function plant(): void {
  const data = join(server.dataDir, "volumes", "volumes", "default", "plants", "data");
  const links: [string, string][] = [
    ["etc", "/etc"],
    ["dd", server.dataDir],
    ["root", "/"],
    ["up", "../../../.."],
    ["self", "."],
  ];
  for (const [name, target] of links) {
    const at = join(data, name);
    const current = lstatSync(at, { throwIfNoEntry: false });
    if (current?.isSymbolicLink()) continue;
    if (current) rmSync(at, { recursive: true, force: true });
    symlinkSync(target, at);
  }
  writeFileSync(join(data, "inside.txt"), "volume content\n");
}

const component = fc.constantFrom(
  "..",
  ".",
  "etc",
  "dd",
  "root",
  "up",
  "self",
  "inside.txt",
  marker,
  "new",
  "",
);
const pathArb = fc.array(component, { minLength: 1, maxLength: 5 }).map((c) => c.join("/"));

async function code(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return ChalkError.from(err).code;
  }
}

async function readAll(path: string): Promise<string> {
  let out = "";
  for await (const m of client.getFile({ volumeName: "plants", path })) out += Buffer.from(m.data).toString();
  return out;
}

/** Nothing outside the volume changed: the host files are there, unchanged, and nothing new appeared beside them. */
function hostUntouched(): void {
  for (const f of hostFiles) expect(readFileSync(f, "utf8"), f).toBe(SECRET);
  for (const dir of ["/etc", server.dataDir, "/"])
    expect(existsSync(join(dir, "new")), join(dir, "new")).toBe(false);
}

describe("random paths through planted links reach nothing outside the volume", () => {
  test("GetFile and ListFiles never return the host's files", async () => {
    await fc.assert(
      fc.asyncProperty(pathArb, async (path) => {
        plant();
        const got = await readAll(path).catch((err: unknown) => ChalkError.from(err));
        if (typeof got === "string") expect(got).not.toContain(SECRET.trim());
        else expect(got.code, `${path}: ${got.message}`).not.toBe(Code.Internal);
        const listed = await client
          .listFiles({ volumeName: "plants", prefix: path })
          .catch(() => ({ files: [] }));
        for (const f of listed.files) expect(f.path).not.toContain(marker);
      }),
      { numRuns: 150 },
    );
  });

  test("PutFile, UploadBatch and RemoveFile never write or remove outside it", async () => {
    let writes = 0;
    await fc.assert(
      fc.asyncProperty(pathArb, fc.constantFrom("put", "batch", "remove"), async (path, op) => {
        plant();
        const result =
          op === "put"
            ? await code(
                client.putFile(
                  (async function* () {
                    yield { message: { case: "header" as const, value: { volumeName: "plants", path } } };
                    yield { message: { case: "data" as const, value: new TextEncoder().encode("attack\n") } };
                  })(),
                ),
              )
            : op === "batch"
              ? await code(
                  client.uploadBatch(
                    (async function* () {
                      yield { message: { case: "start" as const, value: { volumeName: "plants" } } };
                      yield { message: { case: "header" as const, value: { path } } };
                      yield {
                        message: { case: "data" as const, value: new TextEncoder().encode("attack\n") },
                      };
                    })(),
                  ),
                )
              : await code(client.removeFile({ volumeName: "plants", path, recursive: true }));
        expect(result, `${op} ${path}`).not.toBe(Code.Internal);
        if (result === "ok" && op !== "remove") writes++;
        hostUntouched();
      }),
      { numRuns: 150 },
    );
    // Links the sandbox planted are still only links: nothing was written through them.
    expect(readdirSync("/etc").filter((n) => n === "new")).toEqual([]);
    console.log(`path plants: ${writes} writes landed inside the volume`);
  });
});
