import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  BuildStatus,
  type GetOrBuildResponse,
  type GetOrBuildResponseSchema,
  type ImageInfo,
  type ImageInfoSchema,
  LogStream,
} from "@chalk/proto/image/v1";

/**
 * What a store knows about a spec. `exists`: the image is there and nothing was built for this
 * call; `succeeded`: this call built it; `building`: a build runs; `failed`: the last build failed.
 */
export type ImageBuildStatus = "exists" | "building" | "succeeded" | "failed";

/** An image (or the state of its build), as the builder and the image service report it. */
export interface ImageBuildInfo {
  /** `sha256:<hex>` of the canonical spec. */
  specDigest: string;
  /** Build status. */
  status: ImageBuildStatus;
  /** `sha256:<hex>` of the OCI manifest; empty unless `exists` or `succeeded`. */
  manifestDigest: string;
  /** Where the image lives: `<registry>/<repository>@sha256:…` or `local/<repository>@sha256:…`. */
  imageUri: string;
  /** Why the last build failed (`failed` only); empty otherwise. */
  message: string;
  /** When the image was recorded, or the build started or failed. */
  updatedAt: Date;
  /** Sum of the layer blobs' sizes, in bytes. */
  sizeBytes: number;
  /** Number of layers. */
  layerCount: number;
}

/** Where a build log line came from: the step's process, or the builder itself. */
export type BuildLogStream = "stdout" | "stderr" | "builder";

/**
 * One event of a build, in order: for each step (the base image is step 0) a `step` event, its
 * `log` output, and a `step-done` event.
 */
export type ImageBuildEvent =
  | {
      type: "step";
      /** 0-based; the base image is step 0. */
      index: number;
      /** Number of steps, the base included. */
      count: number;
      /** `pip install requests`, `FROM python:3.11-slim`, … */
      description: string;
      /** True when the layer comes from the cache (no output follows). */
      cached: boolean;
    }
  | { type: "log"; step: number; stream: BuildLogStream; text: string }
  | {
      type: "step-done";
      index: number;
      cached: boolean;
      /** Wall time of the step in milliseconds. */
      durationMs: number;
      /** `sha256:…` of the layer blob; empty when the step changed no files. */
      layerDigest: string;
    };

const statusToWire: Record<ImageBuildStatus, BuildStatus> = {
  exists: BuildStatus.EXISTS,
  building: BuildStatus.BUILDING,
  succeeded: BuildStatus.SUCCEEDED,
  failed: BuildStatus.FAILED,
};

const streamToWire: Record<BuildLogStream, LogStream> = {
  stdout: LogStream.STDOUT,
  stderr: LogStream.STDERR,
  builder: LogStream.BUILDER,
};

/** @internal The wire form of an image info. */
export function imageInfoToWire(i: ImageBuildInfo): MessageInitShape<typeof ImageInfoSchema> {
  return {
    specDigest: i.specDigest,
    status: statusToWire[i.status],
    manifestDigest: i.manifestDigest,
    imageUri: i.imageUri,
    message: i.message,
    updatedAtMs: BigInt(i.updatedAt.getTime()),
    sizeBytes: BigInt(i.sizeBytes),
    layerCount: i.layerCount,
  };
}

/** @internal An image info from the wire. */
export function imageInfoFromWire(m: ImageInfo): ImageBuildInfo {
  const status = (Object.keys(statusToWire) as ImageBuildStatus[]).find((k) => statusToWire[k] === m.status);
  return {
    specDigest: m.specDigest,
    status: status ?? "failed",
    manifestDigest: m.manifestDigest,
    imageUri: m.imageUri,
    message: m.message,
    updatedAt: new Date(Number(m.updatedAtMs)),
    sizeBytes: Number(m.sizeBytes),
    layerCount: m.layerCount,
  };
}

/** @internal The wire form of a build event. */
export function buildEventToWire(e: ImageBuildEvent): MessageInitShape<typeof GetOrBuildResponseSchema> {
  switch (e.type) {
    case "step":
      return {
        event: {
          case: "stepStarted",
          value: { index: e.index, count: e.count, description: e.description, cached: e.cached },
        },
      };
    case "log":
      return {
        event: { case: "log", value: { step: e.step, stream: streamToWire[e.stream], text: e.text } },
      };
    case "step-done":
      return {
        event: {
          case: "stepFinished",
          value: {
            index: e.index,
            cached: e.cached,
            durationMs: BigInt(e.durationMs),
            layerDigest: e.layerDigest,
          },
        },
      };
  }
}

/** @internal A build event from the wire; undefined for the result or an unknown event. */
export function buildEventFromWire(m: GetOrBuildResponse): ImageBuildEvent | undefined {
  const ev = m.event;
  switch (ev.case) {
    case "stepStarted":
      return {
        type: "step",
        index: ev.value.index,
        count: ev.value.count,
        description: ev.value.description,
        cached: ev.value.cached,
      };
    case "log": {
      const stream = (Object.keys(streamToWire) as BuildLogStream[]).find(
        (k) => streamToWire[k] === ev.value.stream,
      );
      return { type: "log", step: ev.value.step, stream: stream ?? "builder", text: ev.value.text };
    }
    case "stepFinished":
      return {
        type: "step-done",
        index: ev.value.index,
        cached: ev.value.cached,
        durationMs: Number(ev.value.durationMs),
        layerDigest: ev.value.layerDigest,
      };
    default:
      return undefined;
  }
}
