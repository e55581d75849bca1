/**
 * Logs of finished containers are deleted by the documented retention policy (issue 8, finding 7):
 * per environment the newest `--finished-log-retention` stay, none longer than
 * `--finished-log-max-age-secs`, and an active container's log is never touched. Real server, real
 * gVisor containers with entrypoints.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ContainerService, ContainerStatus } from "@chalk/proto/container/v1";
import { createClient } from "@chalk/rpc";
import { afterEach, describe, expect, test } from "vitest";
import { removeDataDir, type ServerProcess, startServerProcess } from "../src/server-process.js";

const rootfs = execFileSync("bash", [join(import.meta.dirname, "../../../tooling/scripts/rootfs.sh")], {
  encoding: "utf8",
}).trim();

const servers: ServerProcess[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    const client = createClient(ContainerService, server.transport());
    for (const c of (await client.listContainers({}).catch(() => ({ containers: [] }))).containers) {
      await client.stopContainer({ ref: { case: "id", value: c.id } }).catch(() => undefined);
    }
    await server.kill();
    await removeDataDir(server.dataDir);
  }
});

async function serve(args: string[]): Promise<ServerProcess> {
  const server = await startServerProcess({ args: ["--rootfs-image", `minbase=${rootfs}`, ...args] });
  servers.push(server);
  return server;
}

/** Runs a container with `entrypoint` and returns its id once the run stream ends. */
async function run(server: ServerProcess, entrypoint: string[], environment = "default"): Promise<string> {
  const client = createClient(ContainerService, server.transport(environment));
  let id = "";
  const name = `ret-${Math.random().toString(36).slice(2, 8)}`;
  for await (const e of client.runContainer({
    spec: { name, image: { source: { case: "uri", value: "minbase" } }, entrypoint },
  })) {
    if (e.event.case === "container" && e.event.value.id) id = e.event.value.id;
  }
  return id;
}

async function finished(server: ServerProcess, id: string, environment = "default"): Promise<void> {
  const client = createClient(ContainerService, server.transport(environment));
  for (;;) {
    const c = (await client.getContainer({ ref: { case: "id", value: id } })).container;
    if (c && c.status !== ContainerStatus.RUNNING && c.status !== ContainerStatus.PENDING) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const logIds = (server: ServerProcess) =>
  new Set(readdirSync(join(server.dataDir, "logs")).map((f) => f.replace(/\.log(\.1)?$/, "")));

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 100));
}

describe("retention of finished containers' logs", () => {
  test("per environment, only the newest N finished containers' logs stay; their logs still read", async () => {
    const server = await serve(["--finished-log-retention", "2", "--finished-log-max-age-secs", "0"]);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const id = await run(server, ["sh", "-c", `echo run-${i}`]);
      await finished(server, id);
      ids.push(id);
    }
    // Another environment's finished container is counted in its own environment.
    const other = await run(server, ["sh", "-c", "echo other"], "team-b");
    await finished(server, other, "team-b");
    await until(() => !logIds(server).has(ids[0] as string) && !logIds(server).has(ids[1] as string));
    const kept = logIds(server);
    expect(kept.has(ids[2] as string)).toBe(true);
    expect(kept.has(ids[3] as string)).toBe(true);
    expect(kept.has(other)).toBe(true);
    const client = createClient(ContainerService, server.transport());
    const read = async (id: string) => {
      let text = "";
      for await (const r of client.containerLogs({ ref: { case: "id", value: id } }))
        text += Buffer.from(r.data).toString();
      return text;
    };
    expect(await read(ids[3] as string)).toBe("run-3\n");
    // A deleted log reads as empty; the container's record stays.
    expect(await read(ids[0] as string)).toBe("");
    expect((await client.getContainer({ ref: { case: "id", value: ids[0] as string } })).container?.id).toBe(
      ids[0],
    );
  });

  test("a finished container's log goes after the maximum age; a running container's never does", async () => {
    const server = await serve(["--finished-log-retention", "100", "--finished-log-max-age-secs", "1"]);
    const running = await run(server, ["sh", "-c", "echo still-here; exec sleep 3600"]);
    await until(() => existsSync(join(server.dataDir, "logs", `${running}.log`)));
    const done = await run(server, ["sh", "-c", "echo done"]);
    await finished(server, done);
    // The running container wrote its line before the finished one started: its log is older.
    await until(() => !logIds(server).has(done));
    expect(logIds(server).has(running)).toBe(true);
  });
});
