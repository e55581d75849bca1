import { readFileSync } from "node:fs";
import { mkdir, readdir, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const CGROUP_ROOT = "/sys/fs/cgroup";
const MEMORY = join(CGROUP_ROOT, "memory");

/** The cgroup path (relative to each controller's root) that runsc puts a sandbox in. */
export function sandboxCgroupPath(id: string): string {
  return `/chalk/${id}/sandbox`;
}

/**
 * Creates the sandbox's memory cgroup before runsc starts, with the memory limit set (cgroup v1).
 * runsc uses a cgroup it finds already there and leaves it in place when the sandbox dies, so the
 * cgroup's OOM-kill count is still there to read afterwards ({@link oomKills}); a cgroup runsc made
 * itself vanishes with the sandbox, count and all. gVisor reads the limit back as the sandbox's
 * MemTotal. runsc creates and removes the other controllers' cgroups (cpu, pids) itself.
 */
export async function prepareMemoryCgroup(id: string, memoryBytes: number | undefined): Promise<void> {
  const dir = join(MEMORY, sandboxCgroupPath(id));
  // cgroup v2 (no per-controller hierarchy): runsc manages everything and OOM kills go unreported.
  if (!(await readdir(MEMORY).catch(() => undefined))) return;
  await mkdir(dir, { recursive: true });
  if (memoryBytes !== undefined) await writeFile(join(dir, "memory.limit_in_bytes"), String(memoryBytes));
}

/** How many processes the kernel's OOM killer ended in the sandbox's memory cgroup. */
export function oomKills(id: string): number {
  let text = "";
  try {
    // A few bytes of cgroupfs: read synchronously (see LocalProcess.start).
    text = readFileSync(join(MEMORY, sandboxCgroupPath(id), "memory.oom_control"), "utf8");
  } catch {
    // no memory cgroup (cgroup v2, or already removed)
  }
  return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0);
}

/**
 * Removes the sandbox's cgroups (`/chalk/<id>/sandbox` and `/chalk/<id>`) in every controller.
 * A cgroup whose last tasks are still exiting refuses removal for a moment (EBUSY): retried.
 */
export async function removeCgroups(id: string): Promise<void> {
  const controllers = await readdir(CGROUP_ROOT).catch(() => [] as string[]);
  const dirs = controllers.flatMap((c) => {
    const parent = join(CGROUP_ROOT, c, "chalk", id);
    return [join(parent, "sandbox"), parent];
  });
  for (const dir of dirs) {
    for (let attempt = 0; ; attempt++) {
      try {
        await rmdir(dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== "EBUSY" || attempt >= 50) break;
        await sleep(20);
      }
    }
  }
}
