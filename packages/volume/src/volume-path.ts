import { invalidArgument } from "@chalk/core";

/** Longest path inside a volume, in UTF-8 bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;
/** Longest single path component, in UTF-8 bytes (Linux NAME_MAX). */
export const MAX_COMPONENT_BYTES = 255;

const PATH_FORM =
  "a relative path of '/'-separated names without '.', '..', NUL, control characters or backslashes " +
  `(each name at most ${MAX_COMPONENT_BYTES} bytes, the path at most ${MAX_PATH_BYTES} bytes)`;

// C0 controls, DEL and the backslash: legal in Linux names but confusing or dangerous (a Windows
// client's `..\x`, a newline in a listing), so refused everywhere.
const forbiddenChar = /[\u0000-\u001f\u007f\\]/;
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Normalizes a path inside a volume and returns its components: `"a//b/./c"` → `["a", "b", "c"]`.
 * Rejects, with invalid_argument naming `field`: empty paths, absolute paths, `..` (anywhere, even
 * when it would stay inside), NUL and other control characters, backslashes, names over 255 bytes,
 * paths over 4096 bytes, ill-formed Unicode, and a trailing `/` (a file path names a file).
 *
 * @param field - the request field the path came from, used in the error.
 */
export function parseVolumePath(path: unknown, field = "path"): string[] {
  if (typeof path !== "string") throw invalidArgument(field, "must be a string", PATH_FORM);
  const components = parsePathLike(path, field);
  if (components.length === 0)
    throw invalidArgument(field, "must name a file, not the volume root", PATH_FORM);
  if (path.endsWith("/"))
    throw invalidArgument(field, "must name a file, not a directory (trailing '/')", PATH_FORM);
  return components;
}

/**
 * Normalizes a listing prefix. Like {@link parseVolumePath}, but empty is allowed (everything) and a
 * trailing `/` is kept: returns the normalized prefix string (`"./data//x"` → `"data/x"`).
 */
export function parseVolumePrefix(prefix: unknown, field = "prefix"): string {
  if (prefix === undefined || prefix === "") return "";
  if (typeof prefix !== "string") throw invalidArgument(field, "must be a string", PATH_FORM);
  const components = parsePathLike(prefix, field);
  const joined = components.join("/");
  return prefix.endsWith("/") && joined !== "" ? `${joined}/` : joined;
}

/**
 * Normalizes a directory inside a volume (the destination of a directory upload) and returns its
 * components; `""`, `"."` and `"./"` are the volume root (no components). Otherwise as
 * {@link parseVolumePath}, and a trailing `/` is allowed.
 */
export function parseVolumeDir(dir: unknown, field = "dest"): string[] {
  if (dir === "" || dir === undefined) return [];
  if (typeof dir !== "string") throw invalidArgument(field, "must be a string", PATH_FORM);
  return parsePathLike(dir, field);
}

function parsePathLike(path: string, field: string): string[] {
  if (path === "") throw invalidArgument(field, "must not be empty", PATH_FORM);
  if (loneSurrogate.test(path)) throw invalidArgument(field, "is not well-formed Unicode", PATH_FORM);
  if (path.includes("\0")) throw invalidArgument(field, "must not contain NUL bytes", PATH_FORM);
  if (forbiddenChar.test(path)) {
    throw invalidArgument(field, "must not contain control characters or backslashes", PATH_FORM);
  }
  if (path.startsWith("/"))
    throw invalidArgument(field, "must be relative to the volume root, not absolute", PATH_FORM);
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) {
    throw invalidArgument(field, `is longer than ${MAX_PATH_BYTES} bytes`, PATH_FORM);
  }
  const components: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") throw invalidArgument(field, "must not contain '..'", PATH_FORM);
    if (Buffer.byteLength(part) > MAX_COMPONENT_BYTES) {
      throw invalidArgument(field, `has a name longer than ${MAX_COMPONENT_BYTES} bytes`, PATH_FORM);
    }
    components.push(part);
  }
  return components;
}
