import { constants as C, closeSync, lstatSync, openSync, readlinkSync } from "node:fs";

/** What {@link inspectSandboxPath} found. */
export type SandboxPathKind = "directory" | "not-directory" | "missing" | "unknown";

/** Most symlinks followed while resolving one path, as Linux's MAXSYMLINKS. */
const MAX_SYMLINK_HOPS = 40;
const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;

/** Whether `path` (components from the sandbox's root) is at or below a mount point. */
function underMount(path: readonly string[], mountTargets: readonly string[]): boolean {
  const p = `/${path.join("/")}`;
  return mountTargets.some((t) => t === "/" || p === t || p.startsWith(`${t}/`));
}

/**
 * What a path inside a running sandbox is, looked up on the host in the sandbox's root filesystem
 * (its overlayfs mount, which holds the sandbox's own writes) as the sandbox resolves it: symlinks
 * are followed inside the root (an absolute target starts again at the root, `..` stops at it),
 * never on the host. Each step opens one name relative to an open directory (`/proc/self/fd/N/name`
 * with `O_NOFOLLOW`), so a symlink swapped in meanwhile never leads outside the root. A path at or
 * below a mount (`/proc`, `/dev`, volumes) is `unknown`: its content is not in the root.
 *
 * gVisor starts a process in a working directory that is a regular file (Linux refuses: ENOTDIR),
 * so exec checks the directory here first.
 */
export function inspectSandboxPath(
  root: string,
  path: string,
  mountTargets: readonly string[],
): SandboxPathKind {
  const stack: number[] = [];
  const resolved: string[] = [];
  try {
    stack.push(openSync(root, DIR_FLAGS));
    let pending = path.split("/").filter((c) => c !== "" && c !== ".");
    let hops = 0;
    while (pending.length > 0) {
      const name = pending[0] as string;
      pending = pending.slice(1);
      if (name === "..") {
        if (stack.length > 1) closeSync(stack.pop() as number);
        resolved.pop();
        continue;
      }
      if (underMount([...resolved, name], mountTargets)) return "unknown";
      const here = `/proc/self/fd/${stack.at(-1)}/${name}`;
      let st: ReturnType<typeof lstatSync>;
      try {
        st = lstatSync(here);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        return code === "ENOENT" ? "missing" : code === "ENOTDIR" ? "not-directory" : "unknown";
      }
      if (st.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) return "unknown";
        const target = readlinkSync(here);
        const parts = target.split("/").filter((c) => c !== "" && c !== ".");
        if (target.startsWith("/")) {
          while (stack.length > 1) closeSync(stack.pop() as number);
          resolved.length = 0;
        }
        pending = [...parts, ...pending];
        continue;
      }
      if (!st.isDirectory()) return "not-directory";
      stack.push(openSync(here, DIR_FLAGS));
      resolved.push(name);
    }
    return "directory";
  } catch {
    return "unknown";
  } finally {
    for (const fd of stack) closeSync(fd);
  }
}
