import { spawn } from "node:child_process";
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream, type Stats } from "node:fs";
import { lstat, mkdir, open } from "node:fs/promises";
import { posix } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { ChalkError, Code } from "@chalk/core";
import { type FileEntry, FileKind } from "@chalk/proto/image/v1";
import { readTar, type TarHeader, TarType, tarHeader, writeTar } from "./tar.js";
import { ociToOverlay, overlayToOci, type TarOut } from "./whiteouts.js";

/** OCI media types of layers. */
export const LAYER_MEDIA_TYPE = {
  tar: "application/vnd.oci.image.layer.v1.tar",
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

/** How layers are written: `gzip` (smaller, slower) or `tar` (plain). */
export type LayerCompression = "gzip" | "tar";

/** A layer blob written by this module. */
export interface WrittenLayer {
  /** `sha256:` of the blob as stored (compressed or not). */
  digest: string;
  /** `sha256:` of the uncompressed tar (the OCI diff id). */
  diffId: string;
  /** Blob size in bytes. */
  size: number;
  mediaType: string;
  /** Entries in the layer; 0 means the step changed nothing. */
  entries: number;
}

function hashing(hash: Hash, count?: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      if (count) count.bytes += chunk.length;
      done(null, chunk);
    },
  });
}

/** Runs GNU tar; `feed` writes its stdin (extract) or `consume` reads its stdout (create). */
async function gnuTar(
  args: string[],
  io: { feed?: AsyncIterable<Buffer>; consume?: (out: AsyncIterable<Buffer>) => Promise<void> },
): Promise<void> {
  const child = spawn("tar", args, {
    stdio: [io.feed ? "pipe" : "ignore", io.consume ? "pipe" : "ignore", "pipe"],
    // Never the server's environment (its token): children get PATH only.
    env: { PATH: process.env.PATH || "/usr/sbin:/usr/bin:/sbin:/bin" },
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    if (stderr.length < 8192) stderr += d;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve(code));
  });
  try {
    if (io.feed) await pipeline(Readable.from(io.feed), child.stdin!);
    if (io.consume) await io.consume(child.stdout!);
  } catch (err) {
    child.kill("SIGKILL");
    await exited.catch(() => undefined);
    throw err;
  }
  const code = await exited;
  // The consumer read the whole archive (its parser stops at the end-of-archive blocks) and closed
  // the pipe; tar, still writing the zero padding up to its record size, died of SIGPIPE. Under load
  // that race is common, and the archive is complete.
  if (code === null && io.consume && child.signalCode === "SIGPIPE") return;
  if (code !== 0) {
    throw new ChalkError(
      Code.Internal,
      `tar ${args[0]} failed (exit ${code}): ${stderr.trim().split("\n").slice(-3).join("; ")}`,
    );
  }
}

/** Counts the entries that pass. */
async function* counted<T>(items: AsyncIterable<T>, count: { n: number }): AsyncGenerator<T> {
  for await (const item of items) {
    count.n++;
    yield item;
  }
}

/** Writes a tar stream to `outPath`, optionally gzip-compressed, hashing both forms. */
async function writeLayerBlob(
  tar: AsyncIterable<Buffer>,
  outPath: string,
  compression: LayerCompression,
): Promise<Omit<WrittenLayer, "entries">> {
  const diff = createHash("sha256");
  const blob = createHash("sha256");
  const size = { bytes: 0 };
  const out = createWriteStream(outPath, { mode: 0o644 });
  if (compression === "gzip") {
    await pipeline(Readable.from(tar), hashing(diff), createGzip({ level: 1 }), hashing(blob, size), out);
  } else {
    await pipeline(Readable.from(tar), hashing(diff), hashing(blob, size), out);
  }
  const fh = await open(outPath, "r");
  await fh.sync().finally(() => fh.close());
  const diffId = `sha256:${diff.digest("hex")}`;
  return {
    digest: `sha256:${blob.digest("hex")}`,
    diffId,
    size: size.bytes,
    mediaType: LAYER_MEDIA_TYPE[compression],
  };
}

/**
 * Archives an overlayfs upper directory (what one build step changed) as an OCI layer blob at
 * `outPath`: deletions become `.wh.` files, replaced directories `.wh..wh..opq` markers.
 */
export async function layerFromUpperDir(
  upperDir: string,
  outPath: string,
  compression: LayerCompression,
): Promise<WrittenLayer> {
  const count = { n: 0 };
  let result: Omit<WrittenLayer, "entries"> | undefined;
  await gnuTar(
    [
      "--create",
      "--file=-",
      `--directory=${upperDir}`,
      "--format=posix",
      "--pax-option=delete=atime,delete=ctime",
      "--numeric-owner",
      "--sort=name",
      "--xattrs",
      "--xattrs-include=trusted.overlay.opaque",
      "--xattrs-include=security.capability",
      "--xattrs-include=user.*",
      ".",
    ],
    {
      consume: async (stdout) => {
        result = await writeLayerBlob(
          writeTar(counted(overlayToOci(readTar(stdout)), count)),
          outPath,
          compression,
        );
      },
    },
  );
  return { ...result!, entries: count.n };
}

/** The uncompressed tar of a blob: gzip is recognized by its magic bytes, anything else is read as tar. */
async function* blobTar(path: string): AsyncGenerator<Buffer> {
  const fh = await open(path, "r");
  const magic = Buffer.alloc(2);
  await fh.read(magic, 0, 2, 0).finally(() => fh.close());
  const raw = createReadStream(path, { highWaterMark: 1024 * 1024 });
  const source = magic[0] === 0x1f && magic[1] === 0x8b ? raw.pipe(createGunzip()) : raw;
  for await (const chunk of source) yield chunk as Buffer;
}

/**
 * Unpacks a layer blob into `dir` (which must exist, empty) as an overlayfs lower layer: `.wh.`
 * files become whiteout devices, opaque markers the `trusted.overlay.opaque` xattr. Needs root.
 */
export async function unpackLayer(blobPath: string, dir: string): Promise<void> {
  await gnuTar(
    [
      "--extract",
      "--file=-",
      `--directory=${dir}`,
      "--numeric-owner",
      "--same-owner",
      "--preserve-permissions",
      "--xattrs",
      "--xattrs-include=*",
    ],
    { feed: writeTar(ociToOverlay(readTar(blobTar(blobPath)))) },
  );
}

/**
 * Metadata of the directory `path` in the layers below (top layer first), to give an add-files
 * step's parent directories the same mode and owner. The layers hold what earlier steps and the
 * client's files made, symlinks included, so the path is looked at one name at a time with
 * `lstat` and never through a symlink (which would read the host's directories): a path that
 * passes through one, or is not a directory, gets the default (0755, root).
 */
async function lowerDirHeader(layersTopFirst: readonly string[], path: string): Promise<Partial<TarHeader>> {
  const names = path.split("/").filter((n) => n !== "");
  for (const layer of layersTopFirst) {
    let at = layer;
    let st: Stats | undefined;
    for (const name of names) {
      at = `${at}/${name}`;
      st = await lstat(at).catch(() => undefined);
      if (!st?.isDirectory()) break;
    }
    if (st?.isDirectory())
      return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
    if (st) break; // a file or a symlink hides the lower layers: not a directory of the image's own
  }
  return { mode: 0o755 };
}

/**
 * Writes the layer of an add-files step: each file's parent directories (with the metadata they
 * have in the layers below, so copying into `/tmp` keeps it 1777), then the files, directories and
 * symlinks, owned by root with mtime 0.
 */
export async function layerFromFiles(
  files: readonly FileEntry[],
  lowerLayersBottomFirst: readonly string[],
  outPath: string,
  compression: LayerCompression,
): Promise<WrittenLayer> {
  const topFirst = [...lowerLayersBottomFirst].reverse();
  const own = new Set(files.filter((f) => f.kind === FileKind.DIRECTORY).map((f) => f.path));
  const parents = new Set<string>();
  for (const f of files) {
    for (let p = posix.dirname(f.path); p !== "/"; p = posix.dirname(p)) if (!own.has(p)) parents.add(p);
  }
  const entries: TarOut[] = [];
  for (const p of [...parents].sort()) {
    entries.push({
      header: tarHeader({ ...(await lowerDirHeader(topFirst, p)), name: p.slice(1), type: TarType.dir }),
    });
  }
  for (const f of files) {
    const name = f.path.slice(1);
    if (f.kind === FileKind.DIRECTORY)
      entries.push({ header: tarHeader({ name, type: TarType.dir, mode: f.mode }) });
    else if (f.kind === FileKind.SYMLINK) {
      entries.push({
        header: tarHeader({ name, type: TarType.symlink, mode: 0o777, linkname: f.linkTarget }),
      });
    } else {
      const content = f.content;
      const header = tarHeader({ name, type: TarType.file, mode: f.mode, size: content.byteLength });
      entries.push({
        header,
        body: (async function* () {
          yield content;
        })(),
      });
    }
  }
  // Parents before children: directories sort before their contents by path.
  entries.sort((a, b) => (a.header.name < b.header.name ? -1 : a.header.name > b.header.name ? 1 : 0));
  const result = await writeLayerBlob(
    writeTar(
      (async function* () {
        yield* entries;
      })(),
    ),
    outPath,
    compression,
  );
  return { ...result, entries: entries.length };
}

/** Creates `dir` (and parents) for unpacking. */
export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
}
