import type { MessageInitShape } from "@bufbuild/protobuf";
import { invalidArgument } from "@chalk/core";
import type { ImageSourceSchema } from "@chalk/proto/container/v1";
import type { ContainerUpload } from "./upload-plan.js";

/** An image for a container: an image reference string (until `@chalk/image` lands). */
export type ContainerImage = string;

/** The wire form of an image, validated. */
export function imageSourceOf(image: ContainerImage): MessageInitShape<typeof ImageSourceSchema>["source"] {
  if (typeof image === "string") {
    if (image.length > 1024 || /\s|\0/.test(image)) {
      throw invalidArgument("image", `${JSON.stringify(image.slice(0, 80))} is not an image reference`);
    }
    return { case: "uri", value: image };
  }
  throw invalidArgument("image", "expected an Image or an image reference string");
}

/** The image's local files that travel in a volume (strategy "volume"). */
export function uploadsOf(_image: ContainerImage): ContainerUpload[] {
  return [];
}
