/**
 * What one process inside a sandbox costs the host on the pinned runsc's platform (systrap): host
 * tasks (the sandbox's pids cgroup) and memory (its memory cgroup), read before and after starting
 * idle `sleep`s inside, in two steps. Behind `hostPidsLimit` and the README's "Processes".
 *
 *   pnpm --filter @chalk/bench run bench:tasks      (as root)
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { LocalRuntime } from "@chalk/sandbox/local";

const rootfs = execFileSync("bash", [join(import.meta.dirname, "../../tooling/scripts/rootfs.sh")], {
  encoding: "utf8",
}).trim();
const dir = await mkdtemp(join(tmpdir(), "chalk-bench-tasks-"));
const runtime = new LocalRuntime({ stateDir: dir });
const sandbox = await runtime.create({ rootfs, memory: "4Gi", pids: 4096 });
const cgroup = (controller: string, file: string) =>
  Number(readFileSync(`/sys/fs/cgroup/${controller}/chalk/${sandbox.id}/sandbox/${file}`, "utf8").trim());
const read = () => ({
  tasks: cgroup("pids", "pids.current"),
  memory: cgroup("memory", "memory.usage_in_bytes"),
});
try {
  await sleep(1000);
  let last = read();
  console.log(
    `load ${loadavg()
      .map((l) => l.toFixed(1))
      .join(", ")}; idle sandbox: ${last.tasks} host tasks, ${(last.memory / 2 ** 20).toFixed(0)} MiB`,
  );
  for (const n of [100, 400]) {
    await sandbox.exec("sh", "-c", `i=0; while [ $i -lt ${n} ]; do sleep 100000 & i=$((i+1)); done`);
    await sleep(2000);
    const now = read();
    console.log(
      `+${n} processes: ${((now.tasks - last.tasks) / n).toFixed(2)} host tasks and ${((now.memory - last.memory) / n / 1024).toFixed(0)} KiB each`,
    );
    last = now;
  }
} finally {
  await sandbox.stop();
  await rm(dir, { recursive: true, force: true });
}
