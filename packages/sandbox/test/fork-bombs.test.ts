import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { expect, test } from "vitest";
import type { Process } from "../src/index.js";
import { DEFAULT_PIDS } from "../src/local/index.js";
import { useLocalRuntime } from "./local-fixture.js";

const fx = useLocalRuntime("chalk-sbx-bombs-");

/** Host tasks (threads) right now: the total of /proc/loadavg's fourth field. */
function hostTasks(): number {
  return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[3]?.split("/")[1]);
}

function cgroupNumber(controller: string, id: string, file: string): number {
  try {
    return Number(readFileSync(`/sys/fs/cgroup/${controller}/chalk/${id}/sandbox/${file}`, "utf8").trim());
  } catch {
    return 0;
  }
}

test("five concurrent fork bombs in five sandboxes: the host's tasks stay well below pid_max", async () => {
  const pidMax = Number(readFileSync("/proc/sys/kernel/pid_max", "utf8"));
  // Each as a server's container by default: 1 GiB of memory and the default pids limit.
  const sandboxes = await Promise.all(Array.from({ length: 5 }, () => fx.create({ memory: "1Gi" })));
  const baseline = hostTasks();
  const hostLimits = sandboxes.map((s) => cgroupNumber("pids", s.id, "pids.max"));
  const bombs: Process[] = await Promise.all(
    sandboxes.map((s) => s.spawn(["sh", "-c", "f() { f | f & }; f; sleep 30"], { timeoutSecs: 60 })),
  );
  for (const b of bombs) {
    b.stdout.resume();
    b.stderr.resume();
  }
  let peakHost = 0;
  let peakSandbox = 0;
  let peakMemory = 0;
  let hostSpawnFailures = 0;
  const started = Date.now();
  while (Date.now() - started < 12_000) {
    peakHost = Math.max(peakHost, hostTasks());
    peakSandbox = Math.max(peakSandbox, ...sandboxes.map((s) => cgroupNumber("pids", s.id, "pids.current")));
    peakMemory = Math.max(
      peakMemory,
      sandboxes.reduce((sum, s) => sum + cgroupNumber("memory", s.id, "memory.usage_in_bytes"), 0),
    );
    if (spawnSync("/bin/true").status !== 0) hostSpawnFailures++;
    await sleep(100);
  }
  for (const s of sandboxes) await s.signal("SIGKILL").catch(() => undefined);
  console.log(
    `[fork bombs] pid_max ${pidMax}; host tasks ${baseline} before, peak ${peakHost} (+${peakHost - baseline}); ` +
      `peak tasks of one sandbox ${peakSandbox} (its host limit ${hostLimits[0]}, pids ${DEFAULT_PIDS}); ` +
      `peak memory of the five ${(peakMemory / 2 ** 20).toFixed(0)} MiB`,
  );
  // The bombs ran: a sandbox held hundreds of host tasks (2 per process on systrap).
  expect(peakSandbox).toBeGreaterThan(DEFAULT_PIDS / 2);
  // The pids limit inside held each one well under its host safety net…
  for (const limit of hostLimits) expect(peakSandbox).toBeLessThan(limit);
  // …so the host stayed far from pid_max and kept starting processes.
  expect(peakHost - baseline).toBeLessThanOrEqual(hostLimits.reduce((a, b) => a + b, 0));
  expect(peakHost).toBeLessThan(pidMax / 2);
  expect(hostSpawnFailures).toBe(0);
});
