/**
 * The sandbox service on the Kubernetes backend, over gRPC, on the real test cluster: a sandbox
 * created from an image reference is a bare Pod in gVisor in the environment's namespace (no
 * container record), and spawn, stdin with EOF, signals, exit codes and stop work on it
 * through the Pod exec API.
 */
import { ChalkError, Code } from "@chalk/core";
import { connectSandboxes, type Sandbox } from "@chalk/sandbox";
import { ensureCluster, kubectl, type TestCluster } from "@chalk/test-cluster";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { useServer } from "./fixtures.js";

const ctx = useServer([], { backend: "kubernetes" });
const made: Sandbox[] = [];
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await ensureCluster();
});

afterAll(async () => {
  for (const s of made) await s.stop().catch(() => undefined);
});

/** Collects a stream's text. */
function collect(stream: AsyncIterable<Uint8Array>): { text: () => string; done: Promise<void> } {
  let text = "";
  const done = (async () => {
    for await (const chunk of stream) text += Buffer.from(chunk).toString();
  })();
  return { text: () => text, done };
}

async function podsOf(
  id: string,
): Promise<{ spec: { runtimeClassName: string; shareProcessNamespace: boolean } }[]> {
  const list = JSON.parse(
    await kubectl(cluster, [
      "get",
      "pods",
      "-n",
      ctx.namespaceOf("default"),
      "-l",
      `chalk.dev/container-id=${id},chalk.dev/role=sandbox`,
      "-o",
      "json",
    ]),
  ) as { items: { spec: { runtimeClassName: string; shareProcessNamespace: boolean } }[] };
  return list.items;
}

describe("sandboxes from image references are bare Pods", () => {
  test("spawn, stdin with EOF, a signal to a process and to the sandbox, exit codes, stop", async () => {
    const sandboxes = connectSandboxes({ transport: ctx.server.transport() });
    const s = await sandboxes.create({
      image: ctx.image,
      command: ["sh", "-c", "trap 'exit 4' USR1; while :; do sleep 0.2; done"],
      labels: { purpose: "k8s-sandbox-test" },
    });
    made.push(s);
    const pods = await podsOf(s.id);
    expect(pods).toHaveLength(1);
    expect(pods[0]!.spec).toMatchObject({ runtimeClassName: "gvisor", shareProcessNamespace: true });
    expect((await s.info()).state).toBe("running");
    expect((await sandboxes.list({ labels: { purpose: "k8s-sandbox-test" } })).map((i) => i.id)).toEqual([
      s.id,
    ]);

    // Exit codes, and output on both streams.
    const r = await s.exec("sh", "-c", "echo out; echo err >&2; exit 3");
    expect(r).toMatchObject({ exitCode: 3, signal: null, stdoutText: "out\n", stderrText: "err\n" });
    expect((await s.exec("true")).exitCode).toBe(0);

    // stdin with EOF: wc counts what was written and ends when stdin closes.
    const wc = await s.spawn(["wc", "-c"]);
    const wcOut = collect(wc.stdout);
    await wc.stdin.write("hello, pod\n");
    await wc.stdin.end();
    expect(await wc.wait()).toMatchObject({ exitCode: 0 });
    await wcOut.done;
    expect(wcOut.text().trim()).toBe("11");

    // A signal reaches the process group of a spawned process (a child of it too).
    const p = await s.spawn(["sh", "-c", "trap 'echo term; exit 9' TERM; echo ready; sleep 30 & wait"]);
    const pOut = collect(p.stdout);
    for (let i = 0; i < 200 && !pOut.text().includes("ready"); i++)
      await new Promise((r) => setTimeout(r, 50));
    await p.signal("SIGTERM");
    expect(await p.wait()).toMatchObject({ exitCode: 9 });
    await pOut.done;
    expect(pOut.text()).toBe("ready\nterm\n");

    // A process ended by a signal it does not handle reports the signal, not an exit code.
    const k = await s.spawn(["sleep", "30"]);
    await k.signal("SIGKILL");
    expect(await k.wait()).toMatchObject({ exitCode: null, signal: "SIGKILL" });
    // ... and a process that exits with 128 + N by itself reports that code.
    expect(await s.exec("sh", "-c", "exit 137")).toMatchObject({ exitCode: 137, signal: null });

    // A PTY of the asked size, through the sandbox service.
    const tty = await s.spawn(["sh", "-c", "stty size"], { pty: { cols: 90, rows: 30 } });
    const ttyOut = collect(tty.stdout);
    expect(await tty.wait()).toMatchObject({ exitCode: 0 });
    await ttyOut.done;
    expect(ttyOut.text()).toBe("30 90\r\n");

    // A signal to the sandbox reaches its command (not PID 1: the Pod's pause process is).
    await s.signal("SIGUSR1");
    expect(await s.wait()).toMatchObject({ exitCode: 4 });

    await s.stop({ gracePeriodSeconds: 1 });
    expect(await podsOf(s.id)).toEqual([]);
    const err = await sandboxes.get(s.id).then(
      () => undefined,
      (e: unknown) => ChalkError.from(e),
    );
    expect(err?.code).toBe(Code.NotFound);
  });
});
