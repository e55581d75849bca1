import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { runScript, type TestCluster } from "./cluster.js";

/** Where Debian's busybox-static puts its binary (installed by tooling/scripts/setup.sh). */
export const busyboxStatic = "/bin/busybox";

/** Options of {@link pushTestImage}. */
export interface PushTestImageOptions {
  /** Repository in the cluster's registry, e.g. `test/busybox` (lowercase, `/`-separated). */
  repository: string;
  /** Tag to push (default `latest`). */
  tag?: string;
  /** Extra files in the image: absolute path → contents (UTF-8). */
  files?: Record<string, string>;
}

/** An image in the cluster's registry. */
export interface PushedImage {
  /** `registry/repository@sha256:…`: the reference that Pods pull by digest. */
  digestReference: string;
  /** `registry/repository:tag`. */
  tagReference: string;
  /** `sha256:…` of the manifest. */
  digest: string;
}

/**
 * Pushes a tiny image to the cluster's registry: Debian's static busybox as `/bin/busybox`, with
 * `/bin/sh` and the applets tests use linked to it, plus `files`. Packed with umoci, pushed over
 * plain HTTP with skopeo (both installed by setup.sh). Every push of different `files` yields a
 * different digest.
 */
export async function pushTestImage(cluster: TestCluster, opts: PushTestImageOptions): Promise<PushedImage> {
  if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/.test(opts.repository)) {
    throw new ChalkError(
      Code.InvalidArgument,
      `repository "${opts.repository}" is not an OCI repository name`,
      {
        field: "repository",
      },
    );
  }
  const tag = opts.tag ?? "latest";
  const work = await mkdtemp(join(tmpdir(), "chalk-test-image-"));
  try {
    const root = join(work, "rootfs");
    await mkdir(join(root, "bin"), { recursive: true });
    await writeFile(join(root, "bin", "busybox"), await readFile(busyboxStatic));
    await chmod(join(root, "bin", "busybox"), 0o755);
    for (const applet of [
      "sh",
      "sleep",
      "cat",
      "echo",
      "ls",
      "wget",
      "httpd",
      "dmesg",
      "nc",
      "id",
      "hostname",
    ]) {
      await symlink("busybox", join(root, "bin", applet));
    }
    for (const [path, content] of Object.entries(opts.files ?? {})) {
      if (!path.startsWith("/") || path.split("/").includes("..")) {
        throw new ChalkError(Code.InvalidArgument, `file path "${path}" must be absolute without ".."`, {
          field: "files",
        });
      }
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), content);
    }
    const layout = `${join(work, "oci")}:img`;
    await runScript("umoci", ["init", "--layout", join(work, "oci")]);
    await runScript("umoci", ["new", "--image", layout]);
    await runScript("umoci", ["insert", "--image", layout, root, "/"]);
    await runScript("umoci", ["config", "--image", layout, "--config.cmd", "/bin/sh"]);
    const tagReference = `${cluster.registry}/${opts.repository}:${tag}`;
    const digestFile = join(work, "digest");
    await runScript("skopeo", [
      "copy",
      "-q",
      "--dest-tls-verify=false",
      "--digestfile",
      digestFile,
      `oci:${layout}`,
      `docker://${tagReference}`,
    ]);
    const digest = (await readFile(digestFile, "utf8")).trim();
    return { digest, tagReference, digestReference: `${cluster.registry}/${opts.repository}@${digest}` };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Pushes a host root filesystem (a directory) to the cluster's registry as a one-layer image, once
 * per registry lifetime: the tag is derived from `key`, and an image already under that tag is
 * reused. Packed with umoci, pushed with skopeo. For tests that run one image on both the local
 * backend (as an operator image) and the Kubernetes backend (pulled by the node).
 */
export async function pushRootfsImage(
  cluster: TestCluster,
  opts: { dir: string; repository: string; key: string },
): Promise<PushedImage> {
  const tag = opts.key.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 120) || "latest";
  const tagReference = `${cluster.registry}/${opts.repository}:${tag}`;
  const work = await mkdtemp(join(tmpdir(), "chalk-rootfs-image-"));
  try {
    const digestFile = join(work, "digest");
    const known = await runScript("skopeo", [
      "inspect",
      "--tls-verify=false",
      "--format",
      "{{.Digest}}",
      `docker://${tagReference}`,
    ]).catch(() => undefined);
    let digest = known?.stdout.trim();
    if (!digest) {
      const layout = `${join(work, "oci")}:img`;
      await runScript("umoci", ["init", "--layout", join(work, "oci")]);
      await runScript("umoci", ["new", "--image", layout]);
      await runScript("umoci", ["insert", "--image", layout, opts.dir, "/"], { timeoutMs: 600_000 });
      await runScript("skopeo", [
        "copy",
        "-q",
        "--dest-tls-verify=false",
        "--digestfile",
        digestFile,
        `oci:${layout}`,
        `docker://${tagReference}`,
      ]);
      digest = (await readFile(digestFile, "utf8")).trim();
    }
    return { digest, tagReference, digestReference: `${cluster.registry}/${opts.repository}@${digest}` };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
