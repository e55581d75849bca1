import type { MessageInitShape } from "@bufbuild/protobuf";
import { ChalkError, Code, invalidArgument } from "@chalk/core";
import type {
  FileInfoSchema,
  PutFileHeader,
  UploadBatchRequest,
  VolumeInfoSchema,
  VolumeService,
} from "@chalk/proto/volume/v1";
import type { ServiceImpl } from "@chalk/rpc";
import type { VolumeFileInfo, VolumeInfo } from "../types.js";
import type { VolumeStore } from "./volume-store.js";
import type { VolumeStorePutOptions } from "./volume-store-options.js";

/** A volume as its protobuf message. */
export function volumeInfoToProto(v: VolumeInfo): MessageInitShape<typeof VolumeInfoSchema> {
  return { name: v.name, createdAtMs: BigInt(v.createdAt.getTime()) };
}

/** A file's info as its protobuf message. */
export function fileInfoToProto(f: VolumeFileInfo): MessageInitShape<typeof FileInfoSchema> {
  return { path: f.path, size: BigInt(f.size), modifiedAtMs: BigInt(f.modifiedAt.getTime()), mode: f.mode };
}

function putOptions(h: PutFileHeader, signal: AbortSignal): VolumeStorePutOptions {
  if (h.size !== undefined && h.size > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw invalidArgument("header.size", "is larger than this server accepts");
  }
  return { mode: h.mode, size: h.size === undefined ? undefined : Number(h.size), signal };
}

/**
 * The data chunks of a stream, up to the next message of another kind (left in `rest.next`) or
 * the end of the stream.
 */
async function* dataUntilNext<M extends { message: { case: string | undefined; value?: unknown } }>(
  it: AsyncIterator<M>,
  rest: { next: IteratorResult<M> | undefined },
): AsyncGenerator<Uint8Array> {
  for (;;) {
    const n = await it.next();
    if (n.done || n.value.message.case !== "data") {
      rest.next = n;
      return;
    }
    yield n.value.message.value as Uint8Array;
  }
}

/**
 * The `chalk.volume.v1.VolumeService` implementation over a {@link VolumeStore}, for
 * `addService(server, VolumeService, volumeServiceImpl(store))`. Every call acts in the caller's
 * environment (`ctx.environment`), which is validated like a volume name.
 *
 * @example
 * ```ts
 * import { addService, listen } from "@chalk/rpc";
 * import { VolumeService } from "@chalk/proto/volume/v1";
 * import { VolumeStore, volumeServiceImpl } from "@chalk/volume/host";
 * const store = await VolumeStore.open({ dataDir: "/var/lib/chalk" });
 * await listen({ address: "127.0.0.1:50051", register: (s) => addService(s, VolumeService, volumeServiceImpl(store)) });
 * ```
 */
export function volumeServiceImpl(store: VolumeStore): ServiceImpl<typeof VolumeService> {
  return {
    async createVolume(req, ctx) {
      const { volume, created } = await store.create(ctx.environment, req.name, { existOk: req.existOk });
      return { volume: volumeInfoToProto(volume), created };
    },
    async getVolume(req, ctx) {
      return { volume: volumeInfoToProto(await store.get(ctx.environment, req.name)) };
    },
    async listVolumes(req, ctx) {
      const page = await store.list(ctx.environment, { pageSize: req.pageSize, pageToken: req.pageToken });
      return { volumes: page.items.map(volumeInfoToProto), nextPageToken: page.nextPageToken ?? "" };
    },
    async deleteVolume(req, ctx) {
      await store.delete(ctx.environment, req.name);
      return {};
    },
    async listFiles(req, ctx) {
      const page = await store.listFiles(ctx.environment, req.volumeName, {
        prefix: req.prefix,
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return { files: page.items.map(fileInfoToProto), nextPageToken: page.nextPageToken ?? "" };
    },
    async *getFile(req, ctx) {
      const reader = await store.readFile(ctx.environment, req.volumeName, req.path);
      try {
        let first = true;
        for await (const data of reader) {
          yield first ? { info: fileInfoToProto(reader.info), data } : { data };
          first = false;
        }
        if (first) yield { info: fileInfoToProto(reader.info) };
      } finally {
        await reader.close();
      }
    },
    async putFile(requests, ctx) {
      const it = requests[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done || first.value.message.case !== "header") {
        throw invalidArgument("header", "the first message of PutFile must carry the header");
      }
      const h = first.value.message.value;
      const rest: { next: IteratorResult<(typeof first)["value"]> | undefined } = { next: undefined };
      const file = await store.putFile(
        ctx.environment,
        h.volumeName,
        h.path,
        dataUntilNext(it, rest),
        putOptions(h, ctx.signal),
      );
      if (rest.next && !rest.next.done) {
        throw invalidArgument("header", "PutFile carries one file; use UploadBatch for several");
      }
      return { file: fileInfoToProto(file) };
    },
    async removeFile(req, ctx) {
      await store.removeFile(ctx.environment, req.volumeName, req.path, { recursive: req.recursive });
      return {};
    },
    async uploadBatch(requests, ctx) {
      const it = requests[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done || first.value.message.case !== "start") {
        throw invalidArgument("start", "the first message of UploadBatch must carry start");
      }
      const volumeName = first.value.message.value.volumeName;
      await using batch = await store.batch(ctx.environment, volumeName);
      const rest: { next: IteratorResult<UploadBatchRequest> | undefined } = { next: await it.next() };
      while (rest.next && !rest.next.done) {
        const msg = rest.next.value.message;
        if (msg.case === "directory") {
          await batch.putDirectory(msg.value.path, { mode: msg.value.mode });
          rest.next = await it.next();
          continue;
        }
        if (msg.case !== "header")
          throw invalidArgument("header", "each file of a batch must start with a header or be a directory");
        const h = msg.value;
        if (h.volumeName !== "" && h.volumeName !== volumeName) {
          throw invalidArgument("header.volumeName", "must be empty or the batch's volume");
        }
        rest.next = undefined;
        await batch.putFile(h.path, dataUntilNext(it, rest), putOptions(h, ctx.signal));
        if (!rest.next) throw new ChalkError(Code.Internal, "batch stream ended inconsistently");
      }
      const files = await batch.commit();
      return { files: files.map(fileInfoToProto) };
    },
  };
}
