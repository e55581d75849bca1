/**
 * One server per data dir, with real server processes: a second `chalk-server` on a data dir a live
 * one holds exits non-zero naming the data dir and the holder's pid, and touches nothing (the first
 * keeps serving, its running container untouched); once the first is gone (by SIGTERM, or by
 * SIGKILL, which leaves no chance to clean up) a new server starts on it and adopts the container.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ContainerService, ContainerStatus } from "@chalk/proto/container/v1";
import { createClient } from "@chalk/rpc";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { removeDataDir, type ServerProcess, startServerProcess } from "../src/server-process.js";

const rootfs = execFileSync("bash", [join(import.meta.dirname, "../../../tooling/scripts/rootfs.sh")], {
  encoding: "utf8",
}).trim();
const args = ["--images-dir", "/var/cache/chalk/images", "--rootfs-image", `minbase=${rootfs}`];

let first: ServerProcess;
const others: ServerProcess[] = [];
beforeAll(async () => {
  first = await startServerProcess({ args });
});
afterAll(async () => {
  for (const s of others) await s.kill("SIGKILL").catch(() => undefined);
  await first?.kill("SIGKILL").catch(() => undefined);
  if (first) await removeDataDir(first.dataDir);
});

/** Every path under `dir` with its size and mtime: what "touches nothing" compares. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    // Skip what the running container and server write as they run (logs, SQLite's journal, the
    // container's own file systems and disk image).
    if (/\/logs\/|\.log$|-wal$|-shm$|-journal$|\/rootfs\/|\/disk\/|\.img$/.test(path)) continue;
    const s = statSync(path, { throwIfNoEntry: false });
    if (s && !s.isDirectory()) out[path] = `${s.size}@${s.mtimeMs}`;
  }
  return out;
}

async function secondFails(dataDir: string, holder: number): Promise<void> {
  const before = snapshot(dataDir);
  const error = await startServerProcess({ dataDir, args }).then(
    (s) => {
      others.push(s);
      return new Error("a second server started on a data dir in use");
    },
    (err: unknown) => err as Error,
  );
  expect(error.message).toMatch(/chalk-server exited \(1\)/);
  expect(error.message).toContain(`data dir ${dataDir} is in use by another chalk-server (pid ${holder})`);
  expect(snapshot(dataDir)).toEqual(before);
}

describe("one chalk-server per data dir", () => {
  test("a second server refuses to start; the first keeps serving its running container", async () => {
    const containers = createClient(ContainerService, first.transport());
    const made = await containers.createContainer({
      spec: {
        name: "kept",
        image: { source: { case: "uri", value: "minbase" } },
        entrypoint: ["sleep", "600"],
      },
    });
    const id = made.container?.id ?? "";
    for await (const _ of containers.startContainer({ ref: { case: "id", value: id } })) {
      // read to the end: the container runs
    }

    await secondFails(first.dataDir, first.pid);
    await secondFails(first.dataDir, first.pid);

    const got = await containers.getContainer({ ref: { case: "id", value: id } });
    expect(got.container?.status).toBe(ContainerStatus.RUNNING);
    expect((await containers.listContainers({})).containers.map((c) => c.id)).toEqual([id]);
  });

  test("after the holder stops (SIGTERM, then SIGKILL) a new server starts and adopts its container", async () => {
    const dataDir = first.dataDir;
    await first.kill("SIGTERM");
    const second = await startServerProcess({ dataDir, args });
    others.push(second);
    const containers = createClient(ContainerService, second.transport());
    const [kept] = (await containers.listContainers({})).containers;
    expect(kept?.status).toBe(ContainerStatus.RUNNING);
    await secondFails(dataDir, second.pid);

    // kill -9: no cleanup runs, and server.pid still names the dead process; the lock went with it.
    await second.kill("SIGKILL");
    const third = await startServerProcess({ dataDir, args });
    others.push(third);
    const again = (await createClient(ContainerService, third.transport()).listContainers({})).containers;
    expect(again.map((c) => [c.id, c.status])).toEqual([[kept?.id, ContainerStatus.RUNNING]]);
    await secondFails(dataDir, third.pid);
  });
});
