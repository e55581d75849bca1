import { createHash } from "node:crypto";
import { clone, create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import {
  type FileEntry,
  FileKind,
  type ImageSpec,
  ImageSpecSchema,
  type Step,
  StepSchema,
} from "@chalk/proto/image/v1";
import { parseReference } from "./reference.js";
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
} from "./validation.js";

/** Most build steps a spec may have. */
export const MAX_STEPS = 128;
/** Most files one spec may copy into the image. */
export const MAX_FILES = 100_000;

const SHA256_HEX = /^[a-f0-9]{64}$/;

/** Sorts strings by UTF-16 code units: the same order on every host, whatever its locale. */
function codeUnitSort(values: readonly string[]): string[] {
  return [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function sortedUnique(values: readonly string[]): string[] {
  return [...new Set(codeUnitSort(values))];
}

/** Options for {@link canonicalSpec}. */
export interface CanonicalSpecOptions {
  /**
   * The spec is to be built, so every regular file must carry its bytes: `content` of exactly
   * `size_bytes` bytes whose sha256 is `sha256`. Servers check this for every spec they receive, before
   * any work; a spec made only to be hashed (`Image.digest()`) leaves contents out. Default false.
   */
  requireContent?: boolean | undefined;
}

/** The wire field a regular file's bytes travel in, and what a spec to build must hold there. */
const CONTENT_ACCEPTED = "the file's bytes: size_bytes of them, whose sha256 is the entry's sha256";

function checkContent(f: FileEntry, at: string): void {
  const n = f.content.byteLength;
  if (BigInt(n) !== f.sizeBytes) {
    throw invalidArgument(
      `${at}.content`,
      n === 0
        ? `missing, but size_bytes is ${f.sizeBytes} (a spec to build carries every file's content)`
        : `${n} bytes, but size_bytes is ${f.sizeBytes}`,
      CONTENT_ACCEPTED,
    );
  }
  if (createHash("sha256").update(f.content).digest("hex") !== f.sha256) {
    throw invalidArgument(`${at}.content`, "does not match the entry's sha256", CONTENT_ACCEPTED);
  }
}

function checkFiles(files: readonly FileEntry[], field: string, options: CanonicalSpecOptions): FileEntry[] {
  if (files.length === 0) throw invalidArgument(field, "must not be empty", "at least one file");
  const seen = new Set<string>();
  const out = files.map((f, i) => {
    const at = `${field}[${i}]`;
    const path = checkImagePath(f.path, `${at}.path`);
    if (seen.has(path)) throw invalidArgument(`${at}.path`, `${path} appears twice`);
    seen.add(path);
    const mode = checkMode(f.mode, `${at}.mode`);
    switch (f.kind) {
      case FileKind.REGULAR: {
        if (!SHA256_HEX.test(f.sha256))
          throw invalidArgument(`${at}.sha256`, "expected 64 lower-case hex digits");
        if (options.requireContent) checkContent(f, at);
        else if (f.content.byteLength > 0 && BigInt(f.content.byteLength) !== f.sizeBytes) {
          throw invalidArgument(
            `${at}.content`,
            `${f.content.byteLength} bytes, but size_bytes is ${f.sizeBytes}`,
          );
        }
        return { ...f, path, mode, linkTarget: "" };
      }
      case FileKind.DIRECTORY:
        return { ...f, path, mode, sha256: "", sizeBytes: 0n, linkTarget: "", content: new Uint8Array() };
      case FileKind.SYMLINK:
        checkString(f.linkTarget, `${at}.link_target`);
        return { ...f, path, mode: 0o777, sha256: "", sizeBytes: 0n, content: new Uint8Array() };
      default:
        throw invalidArgument(`${at}.kind`, `unknown file kind ${f.kind}`, "REGULAR, DIRECTORY or SYMLINK");
    }
  });
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function normalizeStep(step: Step, field: string, options: CanonicalSpecOptions): Step {
  const k = step.kind;
  switch (k.case) {
    case "pipInstall": {
      const v = k.value;
      const packages = sortedUnique(
        checkListed(v.packages, `${field}.pip_install.packages`).map((p, i) =>
          checkPipRequirement(p, `${field}.pip_install.packages[${i}]`),
        ),
      );
      return create(StepSchema, {
        kind: {
          case: "pipInstall",
          value: {
            packages,
            indexUrl: v.indexUrl ? checkIndexUrl(v.indexUrl, `${field}.pip_install.index_url`) : "",
            extraIndexUrls: v.extraIndexUrls.map((u, i) =>
              checkIndexUrl(u, `${field}.pip_install.extra_index_urls[${i}]`),
            ),
            findLinks: v.findLinks.map((u, i) => checkIndexUrl(u, `${field}.pip_install.find_links[${i}]`)),
          },
        },
      });
    }
    case "aptInstall": {
      const packages = sortedUnique(
        checkListed(k.value.packages, `${field}.apt_install.packages`).map((p, i) =>
          checkAptPackage(p, `${field}.apt_install.packages[${i}]`),
        ),
      );
      return create(StepSchema, { kind: { case: "aptInstall", value: { packages } } });
    }
    case "runCommands": {
      const commands = checkListed(k.value.commands, `${field}.run_commands.commands`).map((c, i) =>
        checkString(c, `${field}.run_commands.commands[${i}]`),
      );
      return create(StepSchema, { kind: { case: "runCommands", value: { commands } } });
    }
    case "env": {
      const vars = checkEnvVars(
        Object.fromEntries(k.value.vars.map((v) => [v.name, v.value])),
        `${field}.env.vars`,
      );
      if (vars.length !== k.value.vars.length)
        throw invalidArgument(`${field}.env.vars`, "a name appears twice");
      const sorted = vars.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return create(StepSchema, {
        kind: { case: "env", value: { vars: sorted.map(([name, value]) => ({ name, value })) } },
      });
    }
    case "workdir":
      return create(StepSchema, {
        kind: {
          case: "workdir",
          value: { path: checkImagePath(k.value.path, `${field}.workdir.path`, { allowRoot: true }) },
        },
      });
    case "addFiles":
      return create(StepSchema, {
        kind: {
          case: "addFiles",
          value: { files: checkFiles(k.value.files, `${field}.add_files.files`, options) },
        },
      });
    default:
      throw invalidArgument(
        field,
        "a step without a kind",
        "pip_install, apt_install, run_commands, env, workdir or add_files",
      );
  }
}

function checkListed(values: readonly string[], field: string): readonly string[] {
  if (values.length === 0) throw invalidArgument(field, "must not be empty", "at least one entry");
  return values;
}

/**
 * Validates a spec completely and returns its canonical form: packages sorted and de-duplicated,
 * env vars and files sorted, paths normalized, adjacent env steps merged (later values win). Throws
 * invalid_argument naming the offending field (`spec.steps[2].pip_install.packages[0]`). Used by
 * the SDK for the specs it makes and by servers for the specs they receive (with
 * `requireContent`: a spec to build carries every file's bytes).
 */
export function canonicalSpec(
  spec: ImageSpec,
  field = "spec",
  options: CanonicalSpecOptions = {},
): ImageSpec {
  const base = spec.base?.source;
  let canonicalBase: ImageSpec["base"];
  if (base?.case === "debianSlim") {
    canonicalBase = {
      $typeName: "chalk.image.v1.Base",
      source: {
        case: "debianSlim",
        value: {
          $typeName: "chalk.image.v1.DebianSlimBase",
          pythonVersion: checkPythonVersion(
            base.value.pythonVersion,
            `${field}.base.debian_slim.python_version`,
          ),
        },
      },
    };
  } else if (base?.case === "registry") {
    parseReference(base.value.reference, `${field}.base.registry.reference`);
    canonicalBase = {
      $typeName: "chalk.image.v1.Base",
      source: {
        case: "registry",
        value: { $typeName: "chalk.image.v1.RegistryBase", reference: base.value.reference },
      },
    };
  } else {
    throw invalidArgument(`${field}.base`, "required", "debian_slim or registry");
  }
  if (spec.steps.length > MAX_STEPS)
    throw invalidArgument(`${field}.steps`, `${spec.steps.length} steps; at most ${MAX_STEPS}`);
  const steps: Step[] = [];
  let files = 0;
  spec.steps.forEach((s, i) => {
    const step = normalizeStep(s, `${field}.steps[${i}]`, options);
    const prev = steps.at(-1);
    if (step.kind.case === "addFiles") files += step.kind.value.files.length;
    if (step.kind.case === "env" && prev?.kind.case === "env") {
      const merged = new Map(prev.kind.value.vars.map((v) => [v.name, v.value]));
      for (const v of step.kind.value.vars) merged.set(v.name, v.value);
      steps[steps.length - 1] = normalizeStep(
        create(StepSchema, {
          kind: { case: "env", value: { vars: [...merged].map(([name, value]) => ({ name, value })) } },
        }),
        `${field}.steps[${i}]`,
        options,
      );
    } else {
      steps.push(step);
    }
  });
  if (files > MAX_FILES) throw invalidArgument(`${field}.steps`, `${files} files; at most ${MAX_FILES}`);
  const entrypoint = spec.entrypoint.length > 0 ? checkArgv(spec.entrypoint, `${field}.entrypoint`) : [];
  return create(ImageSpecSchema, { base: canonicalBase, steps, entrypoint });
}

/**
 * The digest of a canonical spec: `sha256:` + hex sha256 of its binary encoding with every file's
 * content cleared (a file counts by its sha256). Equal specs give equal digests on every host.
 */
export function specDigest(spec: ImageSpec): string {
  return `sha256:${createHash("sha256")
    .update(toBinary(ImageSpecSchema, withoutContent(spec)))
    .digest("hex")}`;
}

/** A copy of the spec with every file's content cleared. */
export function withoutContent(spec: ImageSpec): ImageSpec {
  const copy = clone(ImageSpecSchema, spec);
  for (const s of copy.steps) {
    if (s.kind.case === "addFiles") for (const f of s.kind.value.files) f.content = new Uint8Array();
  }
  return copy;
}

/**
 * Decodes a binary spec (as `chalk.container.v1.ImageSource.spec` carries it) and validates it as a
 * spec to build: every regular file carries its bytes (see {@link CanonicalSpecOptions}).
 */
export function decodeImageSpec(bytes: Uint8Array, field = "spec"): ImageSpec {
  let spec: ImageSpec;
  try {
    spec = fromBinary(ImageSpecSchema, bytes);
  } catch (err) {
    throw new ChalkError(
      Code.InvalidArgument,
      `${field}: not a chalk.image.v1.ImageSpec (${(err as Error).message})`,
      {
        field,
        cause: err,
      },
    );
  }
  return canonicalSpec(spec, field, { requireContent: true });
}

/** Encodes a spec for the wire. */
export function encodeImageSpec(spec: ImageSpec): Uint8Array {
  return toBinary(ImageSpecSchema, spec);
}
