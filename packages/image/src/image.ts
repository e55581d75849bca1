import { resolve } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { invalidArgument } from "@chalk/core";
import { type ImageSpec, ImageSpecSchema, type StepSchema } from "@chalk/proto/image/v1";
import { renderDockerfile } from "./dockerfile.js";
import { localDirEntries, localFileEntries, SKIPPED_DIR_NAMES } from "./local-files.js";
import { parseReference } from "./reference.js";
import { canonicalSpec, encodeImageSpec, specDigest } from "./spec.js";
import {
  checkAptPackage,
  checkArgv,
  checkEnvVars,
  checkImagePath,
  checkIndexUrl,
  checkMode,
  checkPipRequirement,
  checkPythonVersion,
  checkString,
  checkStringList,
  DEFAULT_PYTHON_VERSION,
} from "./validation.js";

/** How local files reach the container. */
export type LocalFileStrategy = "volume" | "copy";

/** Options for {@link Image.pipInstall}. */
export interface ImagePipInstallOptions {
  /** Base URL of the package index (pip `--index-url`). Default: PyPI. No credentials. */
  indexUrl?: string;
  /** More indexes to search (pip `--extra-index-url`). */
  extraIndexUrls?: readonly string[];
  /** URLs of pages or directories with archives (pip `--find-links`). */
  findLinks?: readonly string[];
}

/** Options for {@link Image.addLocalFile}. */
export interface ImageAddLocalFileOptions {
  /** Permission bits in the image. Default: 0o755 for an executable local file, else 0o644. */
  mode?: number;
  /**
   * `"volume"` (default): uploaded to a temporary volume mounted at start; editing the file does
   * not change the image. `"copy"`: baked into the image; its content hash is part of the digest.
   */
  strategy?: LocalFileStrategy;
}

/** Options for {@link Image.addLocalDir}. */
export type ImageAddLocalDirOptions = ImageAddLocalFileOptions;

/**
 * A local file or directory that travels in a temporary volume mounted at start (strategy
 * `"volume"`), for the container layer to upload. It is not part of the image or its digest.
 */
export interface ImageLocalUpload {
  /** `"file"` or `"dir"`. */
  kind: "file" | "dir";
  /** Absolute local path (resolved against the working directory when the method was called). */
  source: string;
  /** Absolute path inside the container. */
  dest: string;
  /** Permission bits of the file (files only; directories keep their files' modes). */
  mode?: number;
  /** Directory names to leave out at any depth (directories only): `.git`. */
  skip: readonly string[];
}

/** Options for {@link Image.toSpec}. */
export interface ImageToSpecOptions {
  /**
   * Read copied files' bytes into the spec (needed to build it). Default true. With false only
   * their hashes are computed, as for {@link Image.digest}.
   */
  content?: boolean;
}

type Base = { kind: "debianSlim"; pythonVersion: string } | { kind: "registry"; reference: string };

type Op =
  | { kind: "step"; step: MessageInitShape<typeof StepSchema> }
  | {
      kind: "copy";
      what: "file" | "dir";
      src: string;
      dest: string;
      mode: number | undefined;
      field: string;
    };

/**
 * An immutable image spec. Every method returns a new `Image`; nothing is read or built until the
 * spec is needed ({@link Image.digest}, {@link Image.toSpec}, or a build). The digest is a hash of
 * the canonical spec, so equal specs share one build and one cache entry on every host.
 *
 * Package names and commands reach the builder as argv: `pipInstall` runs
 * `pip install … -- <packages>`, `aptInstall` runs `apt-get install -y -- <packages>`, and each
 * `runCommands` string is one argument of `/bin/sh -c`.
 *
 * @example
 * ```ts
 * import { Image } from "@chalk/image";
 *
 * const image = Image.debianSlim("3.11")
 *   .aptInstall(["curl"])
 *   .pipInstall(["requests==2.32.3"])
 *   .env({ LOG_LEVEL: "INFO" })
 *   .workdir("/app")
 *   .addLocalFile("./main.py", "/app/main.py", { strategy: "copy" })
 *   .entrypoint(["python", "main.py"]);
 * console.log(await image.digest());   // sha256:…
 * console.log(image.toDockerfile());
 * ```
 */
export class Image {
  readonly #base: Base;
  readonly #ops: readonly Op[];
  readonly #entrypoint: readonly string[];
  readonly #uploads: readonly ImageLocalUpload[];

  private constructor(
    base: Base,
    ops: readonly Op[],
    entrypoint: readonly string[],
    uploads: readonly ImageLocalUpload[],
  ) {
    this.#base = base;
    this.#ops = ops;
    this.#entrypoint = entrypoint;
    this.#uploads = uploads;
  }

  /**
   * A Debian slim image with CPython `pythonVersion` (`"3.9"` to `"3.14"`; default `"3.11"`), with
   * `python` and `pip` on PATH as in the official `python:<version>-slim` images.
   */
  static debianSlim(pythonVersion: string = DEFAULT_PYTHON_VERSION): Image {
    return new Image(
      { kind: "debianSlim", pythonVersion: checkPythonVersion(pythonVersion, "pythonVersion") },
      [],
      [],
      [],
    );
  }

  /**
   * Any image in an OCI registry: `"python:3.12-slim"` (from the builder's configured registry),
   * `"registry.example.com:5000/team/app:v1"`, or pinned with `@sha256:<hex>`. A tag is resolved
   * when the image is first built; later builds of the same spec reuse that result.
   */
  static fromRegistry(reference: string): Image {
    parseReference(reference, "reference");
    return new Image({ kind: "registry", reference }, [], [], []);
  }

  #with(op: Op): Image {
    return new Image(this.#base, [...this.#ops, op], this.#entrypoint, this.#uploads);
  }

  /** Installs Python packages with pip (PEP 508 requirements: `"requests"`, `"numpy>=1.26,<2"`). One layer. */
  pipInstall(packages: string | readonly string[], options: ImagePipInstallOptions = {}): Image {
    const list = checkStringList(packages, "packages").map((p, i) =>
      checkPipRequirement(p, `packages[${i}]`),
    );
    if (options === null || typeof options !== "object")
      throw invalidArgument("options", "expected an object");
    const urls = (v: readonly string[] | undefined, field: string) => {
      if (v === undefined) return [];
      if (!Array.isArray(v)) throw invalidArgument(field, "expected a list of URLs");
      return v.map((u, i) => checkIndexUrl(u, `${field}[${i}]`));
    };
    return this.#with({
      kind: "step",
      step: {
        kind: {
          case: "pipInstall",
          value: {
            packages: list,
            indexUrl:
              options.indexUrl === undefined ? "" : checkIndexUrl(options.indexUrl, "options.indexUrl"),
            extraIndexUrls: urls(options.extraIndexUrls, "options.extraIndexUrls"),
            findLinks: urls(options.findLinks, "options.findLinks"),
          },
        },
      },
    });
  }

  /** Installs Debian packages with apt-get (`"curl"`, `"libpq-dev"`, `"curl=7.88.1-10"`). One layer. */
  aptInstall(packages: string | readonly string[]): Image {
    const list = checkStringList(packages, "packages").map((p, i) => checkAptPackage(p, `packages[${i}]`));
    return this.#with({ kind: "step", step: { kind: { case: "aptInstall", value: { packages: list } } } });
  }

  /** Runs shell commands, each as `/bin/sh -c <command>`, in order; the first failure fails the build. One layer. */
  runCommands(...commands: string[]): Image {
    if (commands.length === 0) throw invalidArgument("commands", "must not be empty", "at least one command");
    const list = commands.map((c, i) => checkString(c, `commands[${i}]`));
    return this.#with({ kind: "step", step: { kind: { case: "runCommands", value: { commands: list } } } });
  }

  /** Sets environment variables for the steps after this one and for containers of the image. */
  env(vars: Record<string, string>): Image {
    const entries = checkEnvVars(vars, "vars");
    return this.#with({
      kind: "step",
      step: { kind: { case: "env", value: { vars: entries.map(([name, value]) => ({ name, value })) } } },
    });
  }

  /** Sets the working directory (absolute; created when missing) for later steps and for containers. */
  workdir(path: string): Image {
    const p = checkImagePath(path, "path", { allowRoot: true });
    return this.#with({ kind: "step", step: { kind: { case: "workdir", value: { path: p } } } });
  }

  /** Sets the process containers of this image run by default. */
  entrypoint(argv: readonly string[]): Image {
    return new Image(this.#base, this.#ops, checkArgv(argv, "argv"), this.#uploads);
  }

  /**
   * Adds a local file at `dest` (absolute). With `strategy: "volume"` (default) it is uploaded to a
   * temporary volume mounted at start and does not change the image; with `"copy"` it is baked into
   * the image (read when the spec is made).
   */
  addLocalFile(src: string, dest: string, options: ImageAddLocalFileOptions = {}): Image {
    return this.#addLocal("file", src, dest, options);
  }

  /**
   * Adds a local directory's contents below `dest` (absolute), skipping `.git` directories. The
   * strategies are those of {@link Image.addLocalFile}; `mode`, when given, applies to every file.
   */
  addLocalDir(src: string, dest: string, options: ImageAddLocalDirOptions = {}): Image {
    return this.#addLocal("dir", src, dest, options);
  }

  #addLocal(what: "file" | "dir", src: string, dest: string, options: ImageAddLocalFileOptions): Image {
    const local = resolve(checkString(src, "src", "a local path"));
    const target = checkImagePath(dest, "dest");
    if (options === null || typeof options !== "object")
      throw invalidArgument("options", "expected an object");
    const mode = options.mode === undefined ? undefined : checkMode(options.mode, "options.mode");
    const strategy = options.strategy ?? "volume";
    if (strategy !== "volume" && strategy !== "copy") {
      throw invalidArgument(
        "options.strategy",
        `${JSON.stringify(strategy)} is not a strategy`,
        '"volume" or "copy"',
      );
    }
    if (strategy === "copy") {
      const field = what === "file" ? "addLocalFile src" : "addLocalDir src";
      return this.#with({ kind: "copy", what, src: local, dest: target, mode, field });
    }
    const upload: ImageLocalUpload = {
      kind: what,
      source: local,
      dest: target,
      ...(mode === undefined ? {} : { mode }),
      skip: what === "dir" ? SKIPPED_DIR_NAMES : [],
    };
    return new Image(this.#base, this.#ops, this.#entrypoint, [...this.#uploads, upload]);
  }

  /** The Python version of a `debianSlim` image; undefined for `fromRegistry`. */
  get pythonVersion(): string | undefined {
    return this.#base.kind === "debianSlim" ? this.#base.pythonVersion : undefined;
  }

  /** The local files and directories that travel in a volume (strategy `"volume"`), in call order. */
  localUploads(): readonly ImageLocalUpload[] {
    return this.#uploads;
  }

  /**
   * The canonical `chalk.image.v1.ImageSpec`. Reads (or, with `content: false`, only hashes) the
   * files added with strategy `"copy"`; a missing one fails with not_found naming it.
   */
  async toSpec(options: ImageToSpecOptions = {}): Promise<ImageSpec> {
    const read = { content: options.content ?? true };
    const steps: MessageInitShape<typeof StepSchema>[] = [];
    for (const op of this.#ops) {
      if (op.kind === "step") {
        steps.push(op.step);
        continue;
      }
      const files =
        op.what === "file"
          ? await localFileEntries(op.src, op.dest, op.mode, op.field, read)
          : await localDirEntries(op.src, op.dest, op.mode, op.field, read);
      steps.push({ kind: { case: "addFiles", value: { files } } });
    }
    const base =
      this.#base.kind === "debianSlim"
        ? { source: { case: "debianSlim" as const, value: { pythonVersion: this.#base.pythonVersion } } }
        : { source: { case: "registry" as const, value: { reference: this.#base.reference } } };
    return canonicalSpec(create(ImageSpecSchema, { base, steps, entrypoint: [...this.#entrypoint] }));
  }

  /** The spec, binary encoded with file contents, as `chalk.container.v1.ImageSource.spec` carries it. */
  async toSpecBytes(): Promise<Uint8Array> {
    return encodeImageSpec(await this.toSpec());
  }

  /**
   * `sha256:<hex>` of the canonical spec. Files added with `"copy"` count by their content hash;
   * files added with `"volume"` do not count.
   */
  async digest(): Promise<string> {
    return specDigest(await this.toSpec({ content: false }));
  }

  /**
   * An equivalent Dockerfile, for reading. Needs no I/O: copied files appear as `COPY` of their local
   * paths; volume files as comments (they are mounted at start, not part of the image).
   */
  toDockerfile(): string {
    return renderDockerfile({
      base: this.#base,
      ops: this.#ops.map((op) =>
        op.kind === "step"
          ? { kind: "step" as const, step: create(ImageSpecSchema, { steps: [op.step] }).steps[0]! }
          : { kind: "copy" as const, what: op.what, src: op.src, dest: op.dest, mode: op.mode },
      ),
      entrypoint: this.#entrypoint,
      uploads: this.#uploads,
    });
  }
}
