import type { MessageInitShape } from "@bufbuild/protobuf";
import { invalidArgument } from "@chalk/core";
import { Image } from "@chalk/image";
import type { ImageSourceSchema } from "@chalk/proto/container/v1";
import { checkImageReference } from "@chalk/spec";
import type { ContainerUpload } from "./upload-plan.js";

/** An image for a container: an `Image` spec, or a reference to a built image (`"python:3.11-slim"`). */
export type ContainerImage = Image | string;

/** Checks an image option without I/O: an `Image`, or a reference string. */
export function checkImage(image: unknown): ContainerImage {
  if (image instanceof Image) return image;
  if (typeof image === "string") return checkImageReference(image, "image");
  throw invalidArgument("image", "required", "an Image (Image.debianSlim(…)) or an image reference string");
}

/** The wire form of an image: the canonical spec (with copied files' bytes) or the reference. */
export async function imageSourceOf(
  image: ContainerImage,
): Promise<MessageInitShape<typeof ImageSourceSchema>["source"]> {
  if (typeof image === "string") return { case: "uri", value: image };
  return { case: "spec", value: await image.toSpecBytes() };
}

/** The image's local files that travel in a volume (strategy "volume"). */
export function uploadsOf(image: ContainerImage): ContainerUpload[] {
  if (typeof image === "string") return [];
  return image.localUploads().map((u) => ({
    kind: u.kind,
    source: u.source,
    dest: u.dest,
    ...(u.mode === undefined ? {} : { mode: u.mode }),
    skip: u.skip,
  }));
}
