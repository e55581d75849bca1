/**
 * Module resolution hook for `--image-file` modules: their imports of the Chalk SDK (`@chalk/image`,
 * `@chalk/container`, …) resolve to the copies this CLI uses, so the `Image` a module exports is the
 * CLI's own class (and a module outside any project with the SDK installed still loads).
 */
import type { ResolveHook } from "node:module";

let cliUrl = "";

/** Receives the URL of the CLI module to resolve the SDK from. */
export function initialize(data: { cliUrl: string }): void {
  cliUrl = data.cliUrl;
}

const SDK = /^@chalk\/(container|image|secrets|volume|sandbox|core)(\/.*)?$/;

/**
 * SDK imports resolve from the CLI. `.ts` files outside node_modules load as ES modules whatever
 * their package's "type" says: as CommonJS they would `require()` the SDK, which is ESM only.
 */
export const resolve: ResolveHook = async (specifier, context, nextResolve) => {
  if (cliUrl && SDK.test(specifier)) return nextResolve(specifier, { ...context, parentURL: cliUrl });
  const resolved = await nextResolve(specifier, context);
  if (
    resolved.url.startsWith("file:") &&
    resolved.url.endsWith(".ts") &&
    !resolved.url.includes("/node_modules/")
  ) {
    return { ...resolved, format: "module" };
  }
  return resolved;
};
