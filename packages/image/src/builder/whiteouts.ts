import { posix } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { type TarEntry, type TarHeader, TarType, tarHeader } from "./tar.js";

/**
 * Deletions in the two layer formats:
 *
 * | meaning | overlayfs (upper dir, unpacked layers) | OCI layer tar |
 * |---|---|---|
 * | `dir/x` deleted | `dir/x`: character device 0/0 | `dir/.wh.x`: empty file |
 * | `dir` replaced (lower contents hidden) | `dir` with xattr `trusted.overlay.opaque=y` | `dir/.wh..wh..opq`: empty file |
 */
export const WHITEOUT_PREFIX = ".wh.";
/** The OCI opaque-directory marker. */
export const OPAQUE_MARKER = ".wh..wh..opq";
/** The overlayfs opaque-directory xattr. */
export const OPAQUE_XATTR = "trusted.overlay.opaque";

/** Extended attributes a layer may carry into an image; the rest (trusted.*, overlay's own) are dropped. */
function keptXattrs(xattrs: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(xattrs).filter(([k]) => k === "security.capability" || k.startsWith("user.")),
  );
}

/** An entry to write: a header and, for regular files, the body of the entry it came from. */
export interface TarOut {
  header: TarHeader;
  body?: AsyncIterable<Uint8Array>;
}

function isOverlayWhiteout(h: TarHeader): boolean {
  return h.type === TarType.char && h.devmajor === 0 && h.devminor === 0;
}

function whiteoutFile(name: string, mtime: number): TarHeader {
  const dir = posix.dirname(name);
  const marker = `${WHITEOUT_PREFIX}${posix.basename(name)}`;
  return tarHeader({
    name: dir === "." ? marker : `${dir}/${marker}`,
    type: TarType.file,
    mode: 0o644,
    mtime,
  });
}

/**
 * Turns the entries of an overlayfs upper directory (as GNU tar archives it, with
 * `trusted.overlay.opaque` xattrs) into an OCI layer's entries: whiteout devices become `.wh.`
 * files, opaque directories get a `.wh..wh..opq` marker, overlay's own xattrs are dropped.
 */
export async function* overlayToOci(entries: AsyncIterable<TarEntry>): AsyncGenerator<TarOut> {
  const whiteouts = new Set<string>();
  for await (const { header, body } of entries) {
    if (header.name === "") continue;
    if (isOverlayWhiteout(header)) {
      whiteouts.add(header.name);
      yield { header: whiteoutFile(header.name, header.mtime) };
      continue;
    }
    // overlayfs shares one inode among whiteouts, so tar sees the later ones as hard links.
    if (header.type === TarType.link && whiteouts.has(header.linkname)) {
      whiteouts.add(header.name);
      yield { header: whiteoutFile(header.name, header.mtime) };
      continue;
    }
    const out = { ...header, xattrs: keptXattrs(header.xattrs) };
    yield header.type === TarType.file ? { header: out, body } : { header: out };
    if (header.type === TarType.dir && header.xattrs[OPAQUE_XATTR] === "y") {
      yield {
        header: tarHeader({
          name: `${header.name}/${OPAQUE_MARKER}`,
          type: TarType.file,
          mode: 0o644,
          mtime: header.mtime,
        }),
      };
    }
  }
}

function badLayer(problem: string): ChalkError {
  return new ChalkError(Code.DataLoss, `layer: ${problem}`);
}

/**
 * Turns an OCI layer's entries into what GNU tar extracts as an overlayfs lower layer: `.wh.x`
 * becomes a character device 0/0 named `x`, `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its
 * directory. Other devices and foreign xattrs are dropped; an entry below a symlink of the same
 * layer is refused (it would be written outside the layer directory).
 */
export async function* ociToOverlay(entries: AsyncIterable<TarEntry>): AsyncGenerator<TarOut> {
  const dirs = new Map<string, TarHeader>();
  const symlinks = new Set<string>();
  for await (const { header, body } of entries) {
    const name = header.name;
    for (let p = posix.dirname(name); p !== "." && p !== "/"; p = posix.dirname(p)) {
      if (symlinks.has(p))
        throw badLayer(`${JSON.stringify(name)} lies below the symlink ${JSON.stringify(p)}`);
    }
    const base = posix.basename(name);
    const dir = posix.dirname(name) === "." ? "" : posix.dirname(name);
    if (base === OPAQUE_MARKER) {
      const known = dirs.get(dir);
      yield {
        header: {
          ...(known ?? tarHeader({ name: dir, type: TarType.dir })),
          name: dir,
          xattrs: { ...(known?.xattrs ?? {}), [OPAQUE_XATTR]: "y" },
        },
      };
      continue;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const hidden = base.slice(WHITEOUT_PREFIX.length);
      if (hidden === "" || hidden === "." || hidden === "..")
        throw badLayer(`malformed whiteout ${JSON.stringify(name)}`);
      yield {
        header: tarHeader({
          name: dir === "" ? hidden : `${dir}/${hidden}`,
          type: TarType.char,
          mode: 0,
          mtime: header.mtime,
        }),
      };
      continue;
    }
    if (header.type === TarType.char || header.type === TarType.block) continue;
    if (
      ![TarType.file, TarType.dir, TarType.symlink, TarType.link, TarType.fifo].includes(header.type as never)
    ) {
      throw badLayer(`${JSON.stringify(name)} has the unsupported entry type ${JSON.stringify(header.type)}`);
    }
    if (header.type === TarType.symlink) symlinks.add(name);
    if (header.type === TarType.link && header.linkname.split("/").includes("..")) {
      throw badLayer(`hard link ${JSON.stringify(name)} points outside the layer`);
    }
    const out = { ...header, xattrs: keptXattrs(header.xattrs) };
    if (header.type === TarType.dir) dirs.set(name, out);
    yield header.type === TarType.file ? { header: out, body } : { header: out };
  }
}
