import { readFileSync } from "node:fs";

/**
 * Staging directories are named after the process that owns them, `<pid>-<start time>`, so that a
 * later process can tell a live owner from a dead one even when the pid was reused.
 */

/** The start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or undefined. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses: fields resume after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19];
  } catch {
    return undefined;
  }
}

/** The owner tag of this process: `<pid>-<start time>`. */
export function ownTag(): string {
  return `${process.pid}-${processStartTime(process.pid) ?? "0"}`;
}

/** Whether the process that a tag names is still running (the same process, not a reused pid). */
export function tagAlive(tag: string): boolean {
  const m = /^(\d+)-(\d+)$/.exec(tag);
  if (!m) return false;
  return processStartTime(Number(m[1])) === m[2];
}
