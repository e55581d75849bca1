import { isMessage } from "@bufbuild/protobuf";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import { ImageService, type ImageSpec, ImageSpecSchema } from "@chalk/proto/image/v1";
import {
  type Client,
  createClient,
  defaultTransport,
  type Transport,
  type TransportCreateOptions,
} from "@chalk/rpc";
import {
  buildEventFromWire,
  type ImageBuildEvent,
  type ImageBuildInfo,
  imageInfoFromWire,
} from "./build-events.js";
import { Image } from "./image.js";
import { canonicalSpec, specDigest } from "./spec.js";

/** Where the image service is. Each field falls back to an environment variable. */
export interface ImageClientOptions extends TransportCreateOptions {
  /**
   * An open transport. Default: one shared by every SDK object with the same address, token and
   * environment (`CHALK_API_SERVER`, `CHALK_TOKEN`, `CHALK_ENVIRONMENT`).
   */
  transport?: Transport;
}

/** Options for {@link ImageClient.getOrBuild}. */
export interface ImageGetOrBuildOptions {
  /** Receives the build's progress as it happens: step boundaries and each step's output. */
  onEvent?: (event: ImageBuildEvent) => void;
  /** Stops waiting (the server finishes the build for the next caller). */
  signal?: AbortSignal;
}

/** Options for {@link ImageClient.list}. */
export interface ImageListOptions {
  /** Images per page, 1-1000. Default 100. */
  pageSize?: number;
  /** `nextPageToken` of the previous page. */
  pageToken?: string;
}

/**
 * A client of the image service: get-or-build with streamed logs, status, list. Built images are
 * content-addressed: asking twice for an equal spec builds once.
 *
 * @example
 * ```ts
 * import { Image, ImageClient } from "@chalk/image";
 *
 * const images = new ImageClient();   // CHALK_API_SERVER, CHALK_TOKEN, CHALK_ENVIRONMENT
 * const built = await images.getOrBuild(Image.debianSlim("3.11").pipInstall(["requests"]), {
 *   onEvent: (e) => e.type === "log" && process.stdout.write(e.text),
 * });
 * console.log(built.status, built.imageUri);   // "succeeded" (or "exists"), "…@sha256:…"
 * ```
 */
export class ImageClient {
  readonly #client: Client<typeof ImageService>;

  constructor(options: ImageClientOptions = {}) {
    this.#client = createClient(ImageService, options.transport ?? defaultTransport(options));
  }

  /**
   * Returns the image of `image`, building it when the server does not hold it. A failed build
   * throws failed_precondition with the failing step's message, after its log reached `onEvent`.
   */
  async getOrBuild(image: Image | ImageSpec, options: ImageGetOrBuildOptions = {}): Promise<ImageBuildInfo> {
    const spec = await specOf(image);
    let result: ImageBuildInfo | undefined;
    for await (const m of this.#client.getOrBuild(
      { spec },
      options.signal ? { signal: options.signal } : {},
    )) {
      if (m.event.case === "result") {
        result = imageInfoFromWire(m.event.value);
        continue;
      }
      const event = buildEventFromWire(m);
      if (event) options.onEvent?.(event);
    }
    if (!result) throw new ChalkError(Code.Internal, "the image service ended the build without a result");
    return result;
  }

  /** The build status of an image or spec digest (`sha256:…`); not_found when the server never saw it. */
  async status(image: Image | ImageSpec | string): Promise<ImageBuildInfo> {
    const digest =
      typeof image === "string"
        ? image
        : image instanceof Image
          ? await image.digest()
          : specDigest(canonicalSpec(image));
    if (typeof digest !== "string" || !/^sha256:[a-f0-9]{64}$/.test(digest)) {
      throw invalidArgument("digest", `${JSON.stringify(digest)} is not a spec digest`, "sha256:<64 hex>");
    }
    const res = await this.#client.getImageStatus({ specDigest: digest });
    if (!res.image) throw new ChalkError(Code.Internal, "the image service sent no image");
    return imageInfoFromWire(res.image);
  }

  /** One page of the images built or requested from this environment, newest first. */
  async list(options: ImageListOptions = {}): Promise<{ images: ImageBuildInfo[]; nextPageToken: string }> {
    const pageSize = options.pageSize ?? 100;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
      throw invalidArgument("pageSize", `${pageSize}`, "an integer from 1 to 1000");
    }
    const res = await this.#client.listImages({ pageSize, pageToken: options.pageToken ?? "" });
    return { images: res.images.map(imageInfoFromWire), nextPageToken: res.nextPageToken };
  }
}

async function specOf(image: Image | ImageSpec): Promise<ImageSpec> {
  if (image instanceof Image) return image.toSpec();
  if (isMessage(image, ImageSpecSchema)) return canonicalSpec(image, "spec", { requireContent: true });
  throw invalidArgument("image", "expected an Image or a chalk.image.v1.ImageSpec");
}
