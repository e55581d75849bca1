import { execFile } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { ChalkError, Code } from "@chalk/core";
import { childEnv } from "./child-env.js";

/** Where a sandbox's root filesystem is assembled. */
export interface OverlayDirs {
  /** Read-only layers, bottom first. */
  layers: readonly string[];
  /** The writable layer (overlayfs upperdir). */
  upper: string;
  /** overlayfs's work directory, on the upper layer's filesystem. */
  work: string;
  /** The mount point: the sandbox's root filesystem. */
  merged: string;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { env: childEnv() }, (err, _out, stderr) =>
      err
        ? reject(new ChalkError(Code.Internal, `${cmd}: ${stderr.trim() || err.message}`, { cause: err }))
        : resolve(),
    ),
  );
}

/**
 * Mounts the layers (never copied, never written) with a writable layer on top. Deletions in the
 * writable layer are plain overlayfs whiteouts (character devices 0/0 and the opaque xattr):
 * directory renames are not recorded as redirects and no index is kept, so the writable layer
 * converts to an OCI layer as is.
 */
export async function mountOverlay(d: OverlayDirs): Promise<void> {
  // overlayfs lists lower layers top first.
  const lower = [...d.layers].reverse().join(":");
  await run("mount", [
    "-t",
    "overlay",
    "overlay",
    "-o",
    `lowerdir=${lower},upperdir=${d.upper},workdir=${d.work},redirect_dir=off,index=off,metacopy=off`,
    d.merged,
  ]);
}

/** Unmounts the root filesystem; when something still holds it, retries, then detaches it lazily. */
export async function unmountOverlay(merged: string): Promise<void> {
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      await run("umount", [merged]);
      return;
    } catch (err) {
      if (/not mounted|no mount point|not found/i.test(ChalkError.from(err).message)) return;
      await sleep(20);
    }
  }
  await run("umount", ["-l", merged]);
}
