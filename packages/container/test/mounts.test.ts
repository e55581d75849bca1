/**
 * Upload and volume mounts never follow links a container planted (issue 8, finding 2), through
 * the real server and gVisor: a container writes `ln -s /etc /data/etc` into a volume it mounts,
 * and a run that mounts that path is refused; links swapped in while runs proceed never lead a
 * run to the host's files.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ContainerService, ContainerStatus } from "@chalk/proto/container/v1";
import { createClient } from "@chalk/rpc";
import { describe, expect } from "vitest";
import { Volume } from "../src/index.js";
import { containerTest, TEST_IMAGE, useServer } from "./fixtures.js";

const ctx = useServer();
const test = containerTest(() => ctx.server);
const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;

/** RunContainer with an upload mount of `source` from `volume`, as a client may send it. */
async function runWithUpload(name: string, volume: string, source: string) {
  const client = createClient(ContainerService, ctx.server.transport());
  let last: Awaited<ReturnType<typeof client.getContainer>>["container"];
  for await (const e of client.runContainer({
    spec: {
      name,
      image: { source: { case: "uri", value: TEST_IMAGE } },
      upload: { volumeName: volume, targets: [{ source, target: "/mounted" }] },
    },
  })) {
    if (e.event.case === "container") last = e.event.value;
  }
  return { client, record: last };
}

describe("mounts never follow planted symlinks", () => {
  test("a link to /etc or to the data dir, written by a container into its volume, is refused as a mount", async ({
    run,
  }) => {
    const volumes = ["evil-etc", "evil-datadir", "evil-through"].map(unique);
    for (const v of volumes)
      await new Volume(v, { transport: ctx.server.transport() }).putFile("placeholder", "x");
    const attacker = await run({
      image: TEST_IMAGE,
      name: unique("attacker"),
      volumes: volumes.map((v, i) => [v, `/v${i}`] as const),
    });
    const planted = await attacker.exec(
      "sh",
      "-c",
      `ln -s /etc /v0/etc && ln -s ${ctx.server.dataDir} /v1/etc && mkdir /v2/tree && ln -s / /v2/tree/up`,
    );
    expect(planted.exitCode).toBe(0);
    for (const [volume, source] of [
      [volumes[0], "etc"],
      [volumes[1], "etc"],
      [volumes[2], "tree/up/etc"],
    ] as const) {
      const { record } = await runWithUpload(unique("victim"), volume ?? "", source);
      expect(record?.status, `${volume}/${source}: ${record?.statusMessage}`).toBe(ContainerStatus.FAILED);
      expect(record?.statusMessage).toMatch(/passes through a symlink/);
      expect(record?.sandboxId).toBe("");
    }
  });

  test("a link swapped in while runs proceed never mounts the host's /etc (raced)", async ({ run }) => {
    const outcomes = { mounted: 0, refused: 0 };
    for (let i = 0; i < 8; i++) {
      const volume = unique("swapped");
      const vol = new Volume(volume, { transport: ctx.server.transport() });
      await vol.putFile("dir/marker", "from the volume\n");
      // The container's side: `dir` becomes, by turns, a symlink to /etc and the real directory.
      const attacker = await run({ image: TEST_IMAGE, name: unique("swapper"), volumes: [[volume, "/v"]] });
      await attacker.exec("sh", "-c", "mkdir /v/spare && ln -s /etc /v/link");
      const swapper = attacker.sandbox.spawn([
        "sh",
        "-c",
        "while :; do mv -T /v/dir /v/spare; mv -T /v/link /v/dir; mv -T /v/dir /v/link; mv -T /v/spare /v/dir; done",
      ]);
      await sleep(Math.random() * 300);
      const name = unique("victim");
      const { client, record } = await runWithUpload(name, volume, "dir");
      await (await swapper).signal("SIGKILL");
      if (record?.status === ContainerStatus.RUNNING) {
        const res = await client.execContainer({
          ref: { case: "id", value: record.id },
          command: ["sh", "-c", "cat /mounted/marker; test -e /mounted/passwd && echo HOST-ETC"],
        });
        expect(new TextDecoder().decode(res.stdout)).toBe("from the volume\n");
        await client.stopContainer({ ref: { case: "id", value: record.id } });
        outcomes.mounted++;
      } else {
        expect(record?.statusMessage, `status ${record?.status}: ${record?.statusMessage}`).toMatch(
          /symlink|not found|not a directory/,
        );
        outcomes.refused++;
      }
      await attacker.stop();
    }
    console.log("raced runs:", JSON.stringify(outcomes));
  });
});
