import { posix } from "node:path";
import { invalidArgument } from "@chalk/core";

/** A local file or directory that travels in the container's upload volume. */
export interface ContainerUpload {
  /** A single file or a directory tree. */
  kind: "file" | "dir";
  /** Local path. */
  source: string;
  /** Absolute path inside the container. */
  dest: string;
  /** Permission bits of a file. */
  mode?: number;
  /** Directory names a directory upload leaves out at any depth (`.git`). */
  skip?: readonly string[];
}

/** Where each upload goes in the volume, and which volume directories mount where. */
export interface UploadPlan {
  /** Uploads with their path inside the volume (`tree/app/main.py`). */
  entries: (ContainerUpload & { volumePath: string })[];
  /** Volume directories and the container directories they mount on. */
  targets: { source: string; target: string }[];
}

const TREE = "tree";

const within = (path: string, dir: string) => path === dir || path.startsWith(dir === "/" ? "/" : `${dir}/`);

/**
 * Lays out uploads in one volume that mirrors their destinations (`/app/main.py` →
 * `tree/app/main.py`) and picks the fewest directories to mount: a file's parent directory, a
 * directory itself, minus any directory inside another one that is mounted. A mounted directory
 * shows only the uploaded files (what the image had there is hidden); bake files into the image
 * with `strategy: "copy"` to merge them with an image directory instead. Destinations must be
 * absolute and normalized, and a file cannot go straight into `/`.
 */
export function planUploads(uploads: readonly ContainerUpload[]): UploadPlan {
  const mountDirs: string[] = [];
  const entries = uploads.map((u, i) => {
    const field = `image.localFiles[${i}].dest`;
    if (!u.dest.startsWith("/") || posix.normalize(u.dest) !== u.dest || u.dest.endsWith("/")) {
      throw invalidArgument(field, `${JSON.stringify(u.dest)} is not an absolute, normalized path`);
    }
    const dir = u.kind === "file" ? posix.dirname(u.dest) : u.dest;
    if (dir === "/") {
      throw invalidArgument(
        field,
        `${JSON.stringify(u.dest)}: uploads cannot mount over "/"`,
        "a path below a directory, e.g. /app/main.py",
      );
    }
    mountDirs.push(dir);
    return { ...u, volumePath: `${TREE}${u.dest}` };
  });
  const unique = [...new Set(mountDirs)].sort();
  const roots = unique.filter((d) => !unique.some((o) => o !== d && within(d, o)));
  return { entries, targets: roots.map((d) => ({ source: `${TREE}${d}`, target: d })) };
}
