/**
 * Sandbox benchmark: every figure next to the raw runsc floor measured in the same run, on the same
 * root filesystem, as a ratio. Not a test: it prints a table and writes bench/results/sandbox.md.
 *
 *   pnpm bench:sandbox          (from bench/, as root; ROUNDS=… to change the sample count)
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SandboxService } from "@chalk/proto/sandbox/v1";
import { addService, createTransport, listen } from "@chalk/rpc";
import { connectSandboxes, type SandboxRuntime } from "@chalk/sandbox";
import { LocalRuntime } from "@chalk/sandbox/local";
import { sandboxServiceImpl } from "@chalk/sandbox/server";

const ROUNDS = Number(process.env.ROUNDS ?? 15);
const STREAM_BYTES = 256 * 1024 * 1024;
const repo = join(import.meta.dirname, "..", "..");
const rootfs = execFileSync("bash", [join(repo, "tooling/scripts/rootfs.sh")], { encoding: "utf8" }).trim();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function timeIt(n: number, f: () => Promise<unknown>): Promise<number> {
  await f(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f();
    times.push(performance.now() - t);
  }
  return median(times);
}

function run(cmd: string, args: string[], stdout: "ignore" | "pipe" = "ignore"): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", stdout, "inherit"] });
    if (stdout === "pipe") child.stdout?.resume();
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")}: exit ${code}`)),
    );
  });
}

/** The raw floor: runsc by hand, no overlay, no cgroup parent, no bookkeeping. */
async function rawFloor(work: string) {
  const root = join(work, "raw-root");
  const bundle = join(work, "raw-bundle");
  await mkdir(bundle, { recursive: true });
  const spec = (args: string[]) => ({
    ociVersion: "1.0.0",
    process: { terminal: false, user: { uid: 0, gid: 0 }, args, env: ["PATH=/usr/bin:/bin"], cwd: "/" },
    root: { path: rootfs, readonly: true },
    mounts: [{ destination: "/proc", type: "proc", source: "proc" }],
    linux: { namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }] },
  });
  const g = [`--root=${root}`, "--network=none"];
  await writeFile(join(bundle, "config.json"), JSON.stringify(spec(["/bin/true"])));
  let n = 0;
  const runTrue = await timeIt(ROUNDS, () => run("runsc", [...g, "run", `--bundle=${bundle}`, `raw-${n++}`]));
  await writeFile(join(bundle, "config.json"), JSON.stringify(spec(["sleep", "infinity"])));
  await run("runsc", [...g, "run", "--detach", `--bundle=${bundle}`, "raw-idle"]);
  try {
    const execTrue = await timeIt(ROUNDS * 2, () => run("runsc", [...g, "exec", "raw-idle", "/bin/true"]));
    const t = performance.now();
    await run("runsc", [...g, "exec", "raw-idle", "head", "-c", String(STREAM_BYTES), "/dev/zero"], "pipe");
    const streamMiBs = STREAM_BYTES / 2 ** 20 / ((performance.now() - t) / 1000);
    return { runTrue, execTrue, streamMiBs };
  } finally {
    await run("runsc", [...g, "delete", "--force", "raw-idle"]).catch(() => undefined);
  }
}

async function ours(runtime: SandboxRuntime) {
  const sandbox = await runtime.create({ rootfs });
  try {
    const execTrue = await timeIt(ROUNDS * 2, () => sandbox.exec("/bin/true"));
    const t = performance.now();
    const proc = await sandbox.spawn(["head", "-c", String(STREAM_BYTES), "/dev/zero"]);
    void (async () => {
      for await (const _ of proc.stderr);
    })();
    let bytes = 0;
    for await (const chunk of proc.stdout) bytes += chunk.length;
    await proc.wait();
    if (bytes !== STREAM_BYTES) throw new Error(`streamed ${bytes} bytes, expected ${STREAM_BYTES}`);
    const streamMiBs = STREAM_BYTES / 2 ** 20 / ((performance.now() - t) / 1000);
    return { execTrue, streamMiBs };
  } finally {
    await sandbox.stop();
  }
}

async function createToFirstExec(runtime: SandboxRuntime): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i <= ROUNDS; i++) {
    const t = performance.now();
    const sandbox = await runtime.create({ rootfs });
    await sandbox.exec("/bin/true");
    if (i > 0) times.push(performance.now() - t);
    await sandbox.stop();
  }
  return median(times);
}

const work = await mkdtemp(join(tmpdir(), "chalk-bench-"));
const local = new LocalRuntime({ stateDir: join(work, "state") });
const { server, address } = await listen({
  address: "127.0.0.1:0",
  register: (s) => addService(s, SandboxService, sandboxServiceImpl(local)),
});
const transport = createTransport({ address });
try {
  const raw = await rawFloor(work);
  const inProc = { ...(await ours(local)), first: await createToFirstExec(local) };
  const remote = {
    ...(await ours(connectSandboxes({ transport }))),
    first: await createToFirstExec(connectSandboxes({ transport })),
  };
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const rows = [
    [
      "create → first exec done",
      `runsc run /bin/true: ${ms(raw.runTrue)}`,
      inProc.first,
      remote.first,
      raw.runTrue,
      "≤ 1.5×",
      false,
    ],
    [
      "exec round trip (/bin/true)",
      `runsc exec /bin/true: ${ms(raw.execTrue)}`,
      inProc.execTrue,
      remote.execTrue,
      raw.execTrue,
      "≤ 1.3× in-process, ≤ 1.5× gRPC",
      false,
    ],
    [
      "stdout throughput (256 MiB)",
      `runsc exec … > /dev/null: ${raw.streamMiBs.toFixed(0)} MiB/s`,
      inProc.streamMiBs,
      remote.streamMiBs,
      raw.streamMiBs,
      "≥ 0.8×",
      true,
    ],
  ] as const;
  const lines = [
    `| figure | raw floor (same run) | in-process | ratio | through gRPC | ratio | target |`,
    `|---|---|---|---|---|---|---|`,
    ...rows.map(([name, floor, a, b, base, target, isRate]) => {
      const fmt = (x: number) => (isRate ? `${x.toFixed(0)} MiB/s` : ms(x));
      return `| ${name} | ${floor} | ${fmt(a)} | ${(a / base).toFixed(2)}× | ${fmt(b)} | ${(b / base).toFixed(2)}× | ${target} |`;
    }),
  ];
  const when = new Date().toISOString().slice(0, 16).replace("T", " ");
  const report = `# Sandbox benchmark\n\n${when} UTC, ${ROUNDS} rounds (medians), runsc ${execFileSync("runsc", ["--version"], { encoding: "utf8" }).split("\n")[0]?.split(" ").at(-1)}, debootstrap minbase rootfs, ${process.arch}, ${(await import("node:os")).cpus().length} cores.\nReproduce: \`cd bench && pnpm bench:sandbox\` (as root).\n\n${lines.join("\n")}\n`;
  console.log(report);
  await mkdir(join(repo, "bench/results"), { recursive: true });
  await writeFile(join(repo, "bench/results/sandbox.md"), report);
} finally {
  transport.close();
  server.forceShutdown();
  await rm(work, { recursive: true, force: true }).catch(() => undefined);
}
