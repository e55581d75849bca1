/** Image builds with live progress, shared by `chalk run` and `chalk image build`. */
import { type Image, type ImageBuildInfo, ImageClient } from "@chalk/image";
import type { SdkConnectOptions } from "./client.js";
import { BuildProgress } from "./progress/build-progress.js";
import { note, type Terminal } from "./terminal.js";

/**
 * Returns the built image, building it when the server does not hold it, with step progress on
 * stderr. A failed build prints the build's log and rethrows.
 */
export async function buildWithProgress(
  image: Image,
  sdk: SdkConnectOptions,
  term: Terminal,
): Promise<ImageBuildInfo> {
  const progress = new BuildProgress(term);
  const stopOnSigint = new AbortController();
  const onSigint = () => stopOnSigint.abort();
  process.once("SIGINT", onSigint);
  try {
    const info = await new ImageClient(sdk).getOrBuild(image, {
      onEvent: progress.onEvent,
      signal: stopOnSigint.signal,
    });
    progress.stop();
    const digest = info.specDigest.slice(0, 19);
    note(info.status === "exists" ? `image ${digest} is cached` : `image ${digest} built`);
    return info;
  } catch (err) {
    if (stopOnSigint.signal.aborted) progress.stop();
    else progress.fail();
    throw err;
  } finally {
    process.off("SIGINT", onSigint);
  }
}
