/**
 * A tour of @chalk/sandbox: one sandbox driven in-process through LocalRuntime, then the same
 * runtime served over gRPC on loopback and driven through connectSandboxes(), with the same code.
 *
 *   pnpm demo                (from the repository root, as root; needs runsc and the test rootfs)
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SandboxService } from "@chalk/proto/sandbox/v1";
import { addService, createTransport, listen } from "@chalk/rpc";
import { connectSandboxes, type SandboxCreateOptions, type SandboxRuntime } from "@chalk/sandbox";
import { LocalRuntime } from "@chalk/sandbox/local";
import { sandboxesFromImages, sandboxServiceImpl } from "@chalk/sandbox/server";

const rootfs = execFileSync("bash", [join(import.meta.dirname, "../../../tooling/scripts/rootfs.sh")], {
  encoding: "utf8",
}).trim();

async function tour(label: string, runtime: SandboxRuntime, base: SandboxCreateOptions): Promise<void> {
  console.log(`\n== ${label}`);
  const t0 = performance.now();
  await using sandbox = await runtime.create({ ...base, memory: "256Mi", cpu: "1", labels: { demo: "yes" } });
  const hello = await sandbox.exec("sh", "-c", "echo hello from $(uname -sr) && grep MemTotal /proc/meminfo");
  console.log(`created ${sandbox.id} and ran a command in ${(performance.now() - t0).toFixed(0)} ms:`);
  process.stdout.write(hello.stdoutText);

  const proc = await sandbox.spawn(["sh", "-c", "tr a-z A-Z; echo 'stdin closed' >&2; exit 3"]);
  await proc.stdin.write("streamed through stdin\n");
  await proc.stdin.end();
  const [out, err] = await Promise.all([text(proc.stdout), text(proc.stderr)]);
  console.log(`stdout: ${out.trim()} | stderr: ${err.trim()} | exit:`, await proc.wait());

  const sleeper = await sandbox.spawn([
    "sh",
    "-c",
    "trap 'echo got TERM; exit 0' TERM; while :; do sleep 0.1; done",
  ]);
  await new Promise((r) => setTimeout(r, 300));
  await sleeper.signal("SIGTERM");
  console.log(`trap: ${(await text(sleeper.stdout)).trim()} →`, await sleeper.wait());

  try {
    await sandbox.exec("sleep", "5", { timeoutSecs: 1 });
  } catch (e) {
    console.log(`timeout: ${(e as Error).message}`);
  }
}

async function text(stream: AsyncIterable<Uint8Array>): Promise<string> {
  let s = "";
  for await (const chunk of stream) s += Buffer.from(chunk).toString("utf8");
  return s;
}

const stateDir = await mkdtemp(join(tmpdir(), "chalk-demo-"));
const local = new LocalRuntime({ stateDir });
try {
  await tour("in-process (LocalRuntime)", local, { rootfs });
  // A server takes image references, resolved in its own store: here one image, the test rootfs.
  const images = sandboxesFromImages(local, async () => ({ rootfs: [rootfs], env: {}, workdir: undefined }));
  const server = await listen({
    address: "127.0.0.1:0",
    register: (s) => addService(s, SandboxService, sandboxServiceImpl(images)),
  });
  const { address } = server;
  const transport = createTransport({ address });
  try {
    await tour(`through gRPC (connectSandboxes at ${address})`, connectSandboxes({ transport }), {
      image: "minbase",
    });
  } finally {
    transport.close();
    server.close();
  }
} finally {
  await rm(stateDir, { recursive: true, force: true });
}
