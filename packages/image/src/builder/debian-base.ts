import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { acquireFileLock } from "./file-lock.js";
import { type LayerCompression, layerFromUpperDir, type WrittenLayer } from "./layers.js";

/** The Python versions a Debian suite ships as its `python3`, which a builder can bootstrap locally. */
export const DEBIAN_PYTHON_SUITES: Readonly<Record<string, string>> = {
  "3.11": "bookworm",
  "3.13": "trixie",
};

/** Where the base image's Python lives: a venv over Debian's python3, first on PATH. */
export const VENV_DIR = "/opt/venv";

/** A bootstrapped base: its root filesystem, its layer blob and the config it needs. */
export interface DebianBase {
  /** The unpacked root filesystem (usable directly as the bottom overlay layer). */
  rootfs: string;
  /** The layer blob (the root filesystem as an OCI layer). */
  blobPath: string;
  layer: WrittenLayer;
  /** Environment of the image. */
  env: string[];
  /** The Debian suite. */
  suite: string;
  /** Full Python version (`3.11.2`). */
  pythonVersion: string;
}

/** Options for {@link bootstrapDebianBase}. */
export interface DebianBaseOptions {
  /** Cache directory (shared by every store on the machine). */
  cacheDir: string;
  /** Debian mirror. */
  mirror: string;
  compression: LayerCompression;
  /** Receives debootstrap's output. */
  onLog?: (text: string) => void;
}

function run(argv: string[], onLog?: (text: string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" },
    });
    let out = "";
    let tail = "";
    const take = (d: Buffer) => {
      const t = d.toString("utf8");
      out += t;
      tail = (tail + t).slice(-4000);
      onLog?.(t);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.once("error", (err) =>
      reject(new ChalkError(Code.Unavailable, `${argv[0]}: ${err.message}`, { cause: err })),
    );
    child.once("close", (code) => {
      if (code === 0) resolve(out);
      else {
        const last = tail.trim().split("\n").slice(-5).join("\n");
        reject(
          new ChalkError(Code.Unavailable, `${argv.slice(0, 3).join(" ")} failed (exit ${code}):\n${last}`),
        );
      }
    });
  });
}

/**
 * The Debian slim base for `pythonVersion`, bootstrapped once per machine and cached in
 * `<cacheDir>/debian-<suite>-python<version>`: `debootstrap --variant=minbase` of the suite that
 * ships that Python, plus python3-venv and ca-certificates; a venv with system site packages at
 * /opt/venv first on PATH makes `python` and `pip` work as in the official python:<v>-slim images
 * (pip installs into the venv, so Debian's "externally managed" guard does not apply). apt caches
 * and package lists are removed. Built in a temporary directory and renamed into place under a file
 * lock, so concurrent callers share one bootstrap and an interrupted one leaves nothing behind.
 */
export async function bootstrapDebianBase(
  pythonVersion: string,
  options: DebianBaseOptions,
): Promise<DebianBase> {
  const suite = DEBIAN_PYTHON_SUITES[pythonVersion];
  if (!suite) throw new ChalkError(Code.Internal, `no Debian suite ships Python ${pythonVersion}`);
  const name = `debian-${suite}-python${pythonVersion}-${options.compression}`;
  const dir = join(options.cacheDir, name);
  await mkdir(options.cacheDir, { recursive: true });
  const cached = await readBase(dir);
  if (cached) return cached;
  const lock = await acquireFileLock(join(options.cacheDir, `${name}.lock`));
  try {
    const again = await readBase(dir);
    if (again) return again;
    // Leftovers of interrupted bootstraps (we hold the lock, so none is running).
    for (const entry of await readdir(options.cacheDir)) {
      if (entry.startsWith(`.${name}.`))
        await rm(join(options.cacheDir, entry), { recursive: true, force: true });
    }
    const tmp = join(options.cacheDir, `.${name}.${process.pid}-${randomBytes(4).toString("hex")}`);
    await mkdir(tmp);
    try {
      const rootfs = join(tmp, "rootfs");
      options.onLog?.(
        `bootstrapping Debian ${suite} (minbase, python3 ${pythonVersion}) from ${options.mirror}\n`,
      );
      await run(
        [
          "debootstrap",
          "--variant=minbase",
          "--include=python3,python3-venv,ca-certificates",
          suite,
          rootfs,
          options.mirror,
        ],
        options.onLog,
      );
      await run(
        ["chroot", rootfs, "/usr/bin/python3", "-m", "venv", "--system-site-packages", VENV_DIR],
        options.onLog,
      );
      const full = (
        await run([
          "chroot",
          rootfs,
          "/usr/bin/python3",
          "-c",
          "import platform; print(platform.python_version())",
        ])
      ).trim();
      // What an image should not carry: downloaded packages, package lists, device nodes (the
      // sandbox mounts its own /dev), the host's resolver config.
      for (const sub of ["var/cache/apt/archives", "var/lib/apt/lists", "dev"]) {
        for (const e of await readdir(join(rootfs, sub)).catch(() => [] as string[])) {
          if (e === "partial" || e === "lock") continue;
          await rm(join(rootfs, sub, e), { recursive: true, force: true });
        }
      }
      await writeFile(join(rootfs, "etc", "resolv.conf"), "");
      const layer = await layerFromUpperDir(rootfs, join(tmp, "layer.blob"), options.compression);
      const env = [
        `PATH=${VENV_DIR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
        `VIRTUAL_ENV=${VENV_DIR}`,
        "LANG=C.UTF-8",
        `PYTHON_VERSION=${full}`,
      ];
      await writeFile(join(tmp, "base.json"), JSON.stringify({ layer, env, suite, pythonVersion: full }));
      await rename(tmp, dir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    const made = await readBase(dir);
    if (!made) throw new ChalkError(Code.Internal, `bootstrap of ${name} left no base`);
    return made;
  } finally {
    await lock.release();
  }
}

async function readBase(dir: string): Promise<DebianBase | undefined> {
  const text = await readFile(join(dir, "base.json"), "utf8").catch(() => undefined);
  if (!text) return undefined;
  const meta = JSON.parse(text) as {
    layer: WrittenLayer;
    env: string[];
    suite: string;
    pythonVersion: string;
  };
  const blobPath = join(dir, "layer.blob");
  if (!(await stat(blobPath).catch(() => undefined))) return undefined;
  return {
    rootfs: join(dir, "rootfs"),
    blobPath,
    layer: meta.layer,
    env: meta.env,
    suite: meta.suite,
    pythonVersion: meta.pythonVersion,
  };
}
