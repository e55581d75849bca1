import type { MessageInitShape } from "@bufbuild/protobuf";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import type { GetOrBuildResponseSchema, ImageService } from "@chalk/proto/image/v1";
import type { ServiceImpl } from "@chalk/rpc";
import { buildEventToWire, type ImageBuildEvent, imageInfoToWire } from "../build-events.js";
import { canonicalSpec } from "../spec.js";
import type { ImageBuilder } from "./image-builder.js";

/** Log a slow client may fall behind by before older output is dropped (with a note). */
const MAX_QUEUED_CHARS = 4 << 20;

type Response = MessageInitShape<typeof GetOrBuildResponseSchema>;

/**
 * The `chalk.image.v1.ImageService` over an {@link ImageBuilder}, for `addService` of `@chalk/rpc`.
 * GetOrBuild streams the build's events then the result; a client that reads slowly gets a bounded
 * backlog (older log text is dropped with a note, step boundaries are kept) and never slows the
 * build. A client that goes away stops waiting; the build goes on for the next caller.
 *
 * @example
 * ```ts
 * import { ImageService } from "@chalk/proto/image/v1";
 * import { addService } from "@chalk/rpc";
 * import { ImageBuilder, imageServiceImpl } from "@chalk/image/builder";
 *
 * const builder = await ImageBuilder.open({ storeDir: "/var/lib/chalk/images" });
 * addService(server, ImageService, imageServiceImpl(builder));
 * ```
 */
export function imageServiceImpl(builder: ImageBuilder): ServiceImpl<typeof ImageService> {
  return {
    async *getOrBuild(req, ctx) {
      if (!req.spec) throw invalidArgument("spec", "required", "a chalk.image.v1.ImageSpec");
      // A spec to build carries every file's bytes: checked here, before any work.
      const spec = canonicalSpec(req.spec, "spec", { requireContent: true });
      const queue: Response[] = [];
      let queuedChars = 0;
      let dropped = 0;
      let wake: (() => void) | undefined;
      const onEvent = (e: ImageBuildEvent) => {
        if (e.type === "log") {
          while (queuedChars + e.text.length > MAX_QUEUED_CHARS && queue.length > 0) {
            const i = queue.findIndex((m) => m.event?.case === "log");
            if (i === -1) break;
            const [old] = queue.splice(i, 1);
            const n = old?.event?.case === "log" ? (old.event.value.text?.length ?? 0) : 0;
            queuedChars -= n;
            dropped += n;
          }
          queuedChars += e.text.length;
        }
        queue.push(buildEventToWire(e));
        wake?.();
      };
      let done = false;
      let failure: unknown;
      let result: Response | undefined;
      builder
        .getOrBuild(spec, { onEvent, environment: ctx.environment, signal: ctx.signal })
        .then(
          (info) => {
            result = { event: { case: "result", value: imageInfoToWire(info) } };
          },
          (err: unknown) => {
            failure = err;
          },
        )
        .finally(() => {
          done = true;
          wake?.();
        });
      for (;;) {
        if (dropped > 0) {
          yield {
            event: {
              case: "log",
              value: { text: `[… ${dropped} characters of build log dropped for a slow reader]\n` },
            },
          } satisfies Response;
          dropped = 0;
        }
        const next = queue.shift();
        if (next) {
          if (next.event?.case === "log") queuedChars -= next.event.value.text?.length ?? 0;
          yield next;
          continue;
        }
        if (done) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      if (failure !== undefined) throw ChalkError.from(failure);
      if (!result) throw new ChalkError(Code.Internal, "the build ended without a result");
      yield result;
    },

    async getImageStatus(req) {
      return { image: imageInfoToWire(await builder.status(req.specDigest)) };
    },

    async listImages(req, ctx) {
      const page = builder.list(ctx.environment, { pageSize: req.pageSize, pageToken: req.pageToken });
      return { images: page.images.map(imageInfoToWire), nextPageToken: page.nextPageToken };
    },
  };
}
