/**
 * Loads the `Image` of an `--image-file` module (its default export). `.ts`, `.mts` and `.cts`
 * files load through tsx (Node 20 cannot import TypeScript); `.js` and `.mjs` load directly.
 */
import { stat } from "node:fs/promises";
import { register } from "node:module";
import { extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import { Image } from "@chalk/image";

let hooked = false;
let tsxRegistered = false;

/** Loads `file` and returns its default export, which must be an `Image`. */
export async function loadImageFile(file: string, field = "--image-file"): Promise<Image> {
  const path = resolve(file);
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) throw invalidArgument(field, `${JSON.stringify(file)} is not a file`);
  const ext = extname(path);
  const typescript = [".ts", ".mts", ".cts"].includes(ext);
  if (!typescript && ![".js", ".mjs"].includes(ext)) {
    throw invalidArgument(
      field,
      `${JSON.stringify(file)} has an unknown extension`,
      ".ts, .mts, .cts, .js or .mjs",
    );
  }
  if (!hooked) {
    register(new URL("./image-file-hooks.js", import.meta.url), { data: { cliUrl: import.meta.url } });
    hooked = true;
  }
  let mod: { default?: unknown };
  try {
    // tsx's loader is registered for the whole process (not tsImport's namespace, which would load
    // a second copy of the SDK and so a second Image class).
    if (typescript && !tsxRegistered) {
      const { register: registerTsx } = await import("tsx/esm/api");
      registerTsx();
      tsxRegistered = true;
    }
    mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
  } catch (err) {
    if (err instanceof ChalkError) throw err;
    const message = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new ChalkError(Code.InvalidArgument, `${field}: cannot load ${JSON.stringify(file)}: ${message}`, {
      field,
      cause: err,
    });
  }
  const image = mod.default;
  if (!(image instanceof Image)) {
    const got = image === undefined ? "no default export" : `a default export of type ${typeof image}`;
    throw invalidArgument(
      field,
      `${JSON.stringify(file)} has ${got}`,
      'a module whose default export is an Image: export default Image.debianSlim("3.11")…',
    );
  }
  return image;
}
