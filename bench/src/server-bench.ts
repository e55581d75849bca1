/** What the benchmarks that start a real server share: the load average and the server's arguments. */
import { execFileSync } from "node:child_process";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root. */
export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** The image store the tests share, so the base image is built once per machine. */
export const IMAGES_DIR = "/var/cache/chalk/images";

/** The load average (1, 5, 15 min) as `"a, b, c"`, for a results file. */
export function loadAverage(): string {
  return loadavg()
    .map((x) => x.toFixed(1))
    .join(", ");
}

/**
 * Arguments of a server that serves the cached Debian minbase root filesystem (the tests' image,
 * from tooling/scripts/rootfs.sh) as the image reference `minbase`, from the shared image store.
 */
export function minbaseServerArgs(): string[] {
  const rootfs = execFileSync("bash", [join(repoRoot, "tooling/scripts/rootfs.sh")], {
    encoding: "utf8",
  }).trim();
  return ["--images-dir", IMAGES_DIR, "--rootfs-image", `minbase=${rootfs}`];
}
