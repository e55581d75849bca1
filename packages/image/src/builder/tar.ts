import { ChalkError, Code } from "@chalk/core";

/**
 * A minimal streaming tar (POSIX pax / ustar, reading GNU long names too): enough to rewrite layer
 * archives entry by entry without holding them in memory. File bodies pass through untouched.
 */

/** Entry types (the ustar typeflag). */
export const TarType = {
  file: "0",
  link: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
} as const;

/** One archive entry's metadata, with pax records already applied. */
export interface TarHeader {
  /** Path inside the archive, without a leading `./` or `/`; directories without a trailing `/`. */
  name: string;
  /** Typeflag (see {@link TarType}). */
  type: string;
  /** Permission bits, set-id and sticky bits included. */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Body length in bytes (regular files only; 0 otherwise). */
  size: number;
  /** Modification time, whole seconds since the epoch. */
  mtime: number;
  /** Hard link or symlink target. */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes (pax `SCHILY.xattr.<name>`), value as raw bytes in a latin1 string. */
  xattrs: Record<string, string>;
}

/** A header with defaults filled in. */
export function tarHeader(h: Partial<TarHeader> & Pick<TarHeader, "name" | "type">): TarHeader {
  return {
    mode: h.type === TarType.dir ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    uname: "",
    gname: "",
    size: 0,
    mtime: 0,
    linkname: "",
    devmajor: 0,
    devminor: 0,
    xattrs: {},
    ...h,
  };
}

const BLOCK = 512;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

function badArchive(problem: string): ChalkError {
  return new ChalkError(Code.DataLoss, `layer archive: ${problem}`);
}

/** Reads exact byte counts from an async iterable of chunks. */
class ChunkReader {
  readonly #it: AsyncIterator<Uint8Array>;
  #buf: Buffer = Buffer.alloc(0);
  #done = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  async #fill(): Promise<boolean> {
    if (this.#done) return false;
    const r = await this.#it.next();
    if (r.done) {
      this.#done = true;
      return false;
    }
    const chunk = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    return true;
  }

  /** Exactly n bytes, or fewer at the end of the input. */
  async read(n: number): Promise<Buffer> {
    while (this.#buf.length < n && (await this.#fill()));
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(out.length);
    return out;
  }

  /** Up to n bytes as they arrive, without copying; throws when the input ends first. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#buf.length === 0 && !(await this.#fill())) throw badArchive("truncated entry body");
      const take = this.#buf.subarray(0, left);
      this.#buf = this.#buf.subarray(take.length);
      left -= take.length;
      yield take;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.chunks(n));
  }

  /** Stops reading the source early. */
  async close(): Promise<void> {
    await this.#it.return?.();
  }
}

function readString(block: Buffer, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? length : nul).toString("utf8");
}

function readNumber(block: Buffer, offset: number, length: number): number {
  const field = block.subarray(offset, offset + length);
  if ((field[0] ?? 0) & 0x80) {
    // GNU base-256 for values that do not fit in octal.
    let v = 0;
    for (let i = 1; i < length; i++) v = v * 256 + (field[i] ?? 0);
    return v;
  }
  const text = field.toString("latin1").replace(/\0.*$/s, "").trim();
  return text === "" ? 0 : Number.parseInt(text, 8);
}

function checksum(block: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (block[i] ?? 0);
  return sum;
}

/** Parses pax records (`"<len> key=value\n"` …). Values stay raw (latin1) so binary xattrs survive. */
function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const len = Number.parseInt(data.subarray(pos, space).toString("latin1"), 10);
    if (!Number.isFinite(len) || len <= 0 || pos + len > data.length)
      throw badArchive("malformed pax record");
    const record = data.subarray(space + 1, pos + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq !== -1) out[record.subarray(0, eq).toString("utf8")] = record.subarray(eq + 1).toString("latin1");
    pos += len;
  }
  return out;
}

const utf8 = (latin1: string) => Buffer.from(latin1, "latin1").toString("utf8");

/** Strips `./` and `/` prefixes and a trailing `/`; rejects `..` components. */
export function normalizeName(name: string): string {
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw badArchive(`entry ${JSON.stringify(name)} leaves the archive root`);
  return parts.join("/");
}

/** One entry of {@link readTar}: its header, and its body, which must be read or left before the next. */
export interface TarEntry {
  header: TarHeader;
  body: AsyncIterable<Buffer>;
}

/**
 * Reads a tar stream entry by entry. Each entry's body is an async iterable of chunks; a body left
 * unread is skipped when the next entry is requested.
 */
export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const r = new ChunkReader(source);
  let pax: Record<string, string> = {};
  let globalPax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  try {
    for (;;) {
      const block = await r.read(BLOCK);
      if (block.length === 0) return;
      if (block.length < BLOCK) throw badArchive("truncated header");
      if (block.equals(ZERO_BLOCK)) return;
      if (readNumber(block, 148, 8) !== checksum(block)) throw badArchive("header checksum mismatch");
      const type = String.fromCharCode(block[156] || 0x30);
      const size = readNumber(block, 124, 12);
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      if (type === "x" || type === "g" || type === "L" || type === "K") {
        const data = await r.read(padded);
        if (data.length < padded) throw badArchive("truncated extended header");
        const body = data.subarray(0, size);
        if (type === "x") pax = { ...pax, ...parsePax(body) };
        else if (type === "g") globalPax = { ...globalPax, ...parsePax(body) };
        else if (type === "L") longName = body.toString("utf8").replace(/\0+$/, "");
        else longLink = body.toString("utf8").replace(/\0+$/, "");
        continue;
      }
      const records = { ...globalPax, ...pax };
      const prefix = readString(block, 345, 155);
      const rawName =
        records.path !== undefined
          ? utf8(records.path)
          : (longName ?? (prefix ? `${prefix}/` : "") + readString(block, 0, 100));
      const xattrs: Record<string, string> = {};
      for (const [k, v] of Object.entries(records)) {
        if (k.startsWith("SCHILY.xattr.")) xattrs[k.slice("SCHILY.xattr.".length)] = v;
      }
      const header: TarHeader = {
        name: normalizeName(rawName),
        type: type === "\0" || type === "7" ? TarType.file : type,
        mode: readNumber(block, 100, 8) & 0o7777,
        uid: records.uid !== undefined ? Number(records.uid) : readNumber(block, 108, 8),
        gid: records.gid !== undefined ? Number(records.gid) : readNumber(block, 116, 8),
        size: records.size !== undefined ? Number(records.size) : size,
        mtime: records.mtime !== undefined ? Math.floor(Number(records.mtime)) : readNumber(block, 136, 12),
        linkname:
          records.linkpath !== undefined ? utf8(records.linkpath) : (longLink ?? readString(block, 157, 100)),
        uname: records.uname !== undefined ? utf8(records.uname) : readString(block, 265, 32),
        gname: records.gname !== undefined ? utf8(records.gname) : readString(block, 297, 32),
        devmajor: readNumber(block, 329, 8),
        devminor: readNumber(block, 337, 8),
        xattrs,
      };
      pax = {};
      longName = undefined;
      longLink = undefined;
      const bodySize = type === TarType.link ? 0 : header.size;
      let read = 0;
      let started = false;
      const body = {
        [Symbol.asyncIterator]: () => {
          if (started) throw badArchive("entry body read twice");
          started = true;
          return (async function* () {
            for await (const chunk of r.chunks(bodySize)) {
              read += chunk.length;
              yield chunk;
            }
          })();
        },
      };
      yield { header, body };
      // Whatever the consumer left of the body is skipped.
      if (read < bodySize) await r.skip(bodySize - read);
      const pad = Math.ceil(bodySize / BLOCK) * BLOCK - bodySize;
      if (pad > 0) await r.read(pad);
    }
  } finally {
    await r.close();
  }
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, "utf8"), value, Buffer.from("\n")]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function writeString(block: Buffer, offset: number, length: number, value: string): boolean {
  const bytes = Buffer.from(value, "utf8");
  if (bytes.length > length) return false;
  bytes.copy(block, offset);
  return true;
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): boolean {
  const text = Math.max(0, Math.floor(value)).toString(8);
  if (text.length > length - 1) return false;
  block.write(text.padStart(length - 1, "0"), offset, "latin1");
  return true;
}

function rawBlock(
  h: TarHeader,
  name: string,
  type: string,
  size: number,
): { block: Buffer; overflow: string[] } {
  const block = Buffer.alloc(BLOCK);
  const overflow: string[] = [];
  if (!writeString(block, 0, 100, name)) overflow.push("path");
  writeOctal(block, 100, 8, h.mode & 0o7777);
  if (!writeOctal(block, 108, 8, h.uid)) overflow.push("uid");
  if (!writeOctal(block, 116, 8, h.gid)) overflow.push("gid");
  if (!writeOctal(block, 124, 12, size)) overflow.push("size");
  writeOctal(block, 136, 12, h.mtime);
  block.write(type, 156, "latin1");
  if (!writeString(block, 157, 100, h.linkname)) overflow.push("linkpath");
  block.write("ustar\x0000", 257, "latin1");
  if (!writeString(block, 265, 32, h.uname)) overflow.push("uname");
  if (!writeString(block, 297, 32, h.gname)) overflow.push("gname");
  if (type === TarType.char || type === TarType.block) {
    writeOctal(block, 329, 8, h.devmajor);
    writeOctal(block, 337, 8, h.devminor);
  }
  return { block, overflow };
}

function sealed(block: Buffer): Buffer {
  block.write(checksum(block).toString(8).padStart(6, "0"), 148, "latin1");
  block[154] = 0;
  block[155] = 0x20;
  return block;
}

/** Encodes a header as ustar, preceded by a pax header when a value does not fit (or for xattrs). */
export function encodeHeader(h: TarHeader): Buffer {
  const name = h.type === TarType.dir ? (h.name === "" ? "./" : `${h.name}/`) : h.name;
  const size = h.type === TarType.file ? h.size : 0;
  const { block, overflow } = rawBlock(h, name, h.type, size);
  const records: Buffer[] = [];
  const values: Record<string, () => Buffer> = {
    path: () => Buffer.from(name, "utf8"),
    uid: () => Buffer.from(String(h.uid)),
    gid: () => Buffer.from(String(h.gid)),
    size: () => Buffer.from(String(size)),
    linkpath: () => Buffer.from(h.linkname, "utf8"),
    uname: () => Buffer.from(h.uname, "utf8"),
    gname: () => Buffer.from(h.gname, "utf8"),
  };
  for (const key of overflow) records.push(paxRecord(key, values[key]!()));
  for (const [k, v] of Object.entries(h.xattrs).sort(([a], [b]) => (a < b ? -1 : 1))) {
    records.push(paxRecord(`SCHILY.xattr.${k}`, Buffer.from(v, "latin1")));
  }
  if (records.length === 0) return sealed(block);
  const data = Buffer.concat(records);
  const paxName = `PaxHeaders/${name.slice(-80)}`.slice(0, 99);
  const paxBlock = rawBlock(
    tarHeader({ name: paxName, type: "x", mtime: h.mtime }),
    paxName,
    "x",
    data.length,
  ).block;
  // Fields that overflowed keep a truncated, harmless value in the ustar header.
  const pad = Buffer.alloc(Math.ceil(data.length / BLOCK) * BLOCK - data.length);
  if (overflow.includes("path"))
    writeString(
      block,
      0,
      100,
      Buffer.from(name)
        .subarray(0, 99)
        .toString("latin1")
        .replace(/[^\x20-\x7e]/g, "_"),
    );
  return Buffer.concat([sealed(paxBlock), data, pad, sealed(block)]);
}

/** Zero padding after a body of `size` bytes. */
export function bodyPadding(size: number): Buffer {
  const pad = Math.ceil(size / BLOCK) * BLOCK - size;
  return pad === 0 ? Buffer.alloc(0) : Buffer.alloc(pad);
}

/** The two zero blocks that end an archive. */
export function endOfArchive(): Buffer {
  return Buffer.alloc(BLOCK * 2);
}

/**
 * Writes entries as a tar stream: each entry's header, its body (for regular files, exactly
 * `header.size` bytes), padding, and the end-of-archive blocks.
 */
export async function* writeTar(
  entries: AsyncIterable<{ header: TarHeader; body?: AsyncIterable<Uint8Array> | Uint8Array }>,
): AsyncGenerator<Buffer> {
  for await (const { header, body } of entries) {
    yield encodeHeader(header);
    if (header.type !== TarType.file || header.size === 0) continue;
    let written = 0;
    if (body instanceof Uint8Array) {
      written = body.byteLength;
      yield Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    } else if (body) {
      for await (const chunk of body) {
        written += chunk.byteLength;
        yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      }
    }
    if (written !== header.size) {
      throw new ChalkError(
        Code.Internal,
        `tar: ${header.name} has ${written} bytes, header says ${header.size}`,
      );
    }
    yield bodyPadding(header.size);
  }
  yield endOfArchive();
}
