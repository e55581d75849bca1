import { decodeImageSpec } from "@chalk/image";
import type { ImageBuilder } from "@chalk/image/builder";
import type { BuildLogEvent, ImageProvider } from "./images.js";

/**
 * Images from `@chalk/image/builder`: a spec is got or built (its progress becomes the run's build
 * log: a line per step, then the step's output); a reference is resolved from the store or pulled
 * from its registry.
 */
export function builderImages(builder: ImageBuilder): ImageProvider {
  return {
    check(source, field) {
      if (source.kind === "spec") decodeImageSpec(source.spec, `${field}.spec`);
    },
    async resolve(source, environment, onLog, signal) {
      if (source.kind === "uri") return builder.resolveReference(source.uri);
      let steps = 0;
      const emit = (e: BuildLogEvent) => onLog(e);
      return builder.resolve(decodeImageSpec(source.spec, "spec.image.spec"), {
        environment,
        ...(signal ? { signal } : {}),
        onEvent(e) {
          if (e.type === "step") {
            steps = e.count;
            const mark = e.cached ? " (cached)" : "";
            emit({
              step: e.index,
              steps,
              text: `[step ${e.index + 1}/${e.count}] ${e.description}${mark}\n`,
            });
          } else if (e.type === "log") {
            emit({ step: e.step, steps, text: e.text });
          }
        },
      });
    },
  };
}
