import { parseReference } from "../reference.js";
import { decodeImageSpec } from "../spec.js";
import type { ImageBuilder } from "./image-builder.js";
import type { ResolvedImage } from "./image-builder-options.js";

/** Where a container's image comes from: a reference, or a binary `chalk.image.v1.ImageSpec`. */
export type ImageSourceInput = { kind: "uri"; uri: string } | { kind: "spec"; spec: Uint8Array };

/** One piece of build output, by step. */
export interface ImageBuildLogLine {
  /** 0-based step (the base is 0). */
  step: number;
  /** Number of steps, the base included. */
  steps: number;
  /** The output. */
  text: string;
}

/** Gets images for a server: validates a source before any work, then gets or builds it. */
export interface ImageSourceProvider {
  /** Throws invalid_argument (naming `field`) for a malformed source. */
  check(source: ImageSourceInput, field: string): void;
  /** The image, built when not cached; build output goes to `onLog`. */
  resolve(
    source: ImageSourceInput,
    environment: string,
    onLog: (line: ImageBuildLogLine) => void,
    signal?: AbortSignal,
  ): Promise<ResolvedImage>;
}

/**
 * An image provider over a builder, for servers that take an image as a spec or a reference (as
 * `chalk.container.v1.ImageSource` does): specs are decoded, validated and got-or-built; references
 * are read from the store (`local/…@sha256:…`) or pulled from their registry. Build output reaches
 * `onLog` as text per step.
 *
 * @example
 * ```ts
 * const images = builderImageProvider(await ImageBuilder.open({ storeDir }));
 * images.check({ kind: "spec", spec: bytes }, "spec.image");
 * const image = await images.resolve({ kind: "spec", spec: bytes }, "default", (l) => log(l.text));
 * ```
 */
export function builderImageProvider(builder: ImageBuilder): ImageSourceProvider {
  return {
    check(source, field) {
      if (source.kind === "spec") decodeImageSpec(source.spec, `${field}.spec`);
      else parseReference(source.uri, `${field}.uri`);
    },
    async resolve(source, environment, onLog, signal) {
      if (source.kind === "uri") return builder.resolveReference(source.uri);
      let steps = 0;
      return builder.resolve(decodeImageSpec(source.spec), {
        environment,
        ...(signal ? { signal } : {}),
        onEvent: (e) => {
          if (e.type === "step") {
            steps = e.count;
            onLog({
              step: e.index,
              steps,
              text: `#${e.index} ${e.description}${e.cached ? " (cached)" : ""}\n`,
            });
          } else if (e.type === "log") onLog({ step: e.step, steps, text: e.text });
        },
      });
    },
  };
}
