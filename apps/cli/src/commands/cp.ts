/**
 * `chalk cp`: copies files and directories between this machine and a running container, through
 * the container's own `tar` and `cat` over an exec stream (stdin in, stdout out), with progress.
 * When the files API lands this can move onto it; the command stays the same.
 */
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Container, Process } from "@chalk/container";
import { ChalkError, Code } from "@chalk/core";
import type { Command } from "commander";
import * as tar from "tar";
import { sdkFor, serverCommand } from "../command.js";
import { runningContainer } from "../containers.js";
import { UsageError } from "../errors.js";
import { TransferProgress } from "../progress/transfer-progress.js";
import { terminal } from "../terminal.js";

/** `NAME:/path` or `ID:/path` (container names are DNS labels, so a local path rarely matches). */
const REMOTE = /^([a-z0-9][a-z0-9-]{0,62}|[0-9a-f-]{36}):(.*)$/;

interface Remote {
  container: string;
  path: string;
}

function parseRemote(arg: string): Remote | undefined {
  if (arg.startsWith("/") || arg.startsWith(".")) return undefined;
  const m = REMOTE.exec(arg);
  if (!m) return undefined;
  if (!m[2]!.startsWith("/"))
    throw new UsageError(`cp: ${JSON.stringify(arg)}: the container path must be absolute`);
  return { container: m[1]!, path: m[2]! };
}

/** Runs a helper command in the container and returns its stdout; its failure becomes an error. */
async function run(c: Container, script: string, ...args: string[]): Promise<string> {
  const r = await c.sandbox.exec("/bin/sh", "-c", script, "sh", ...args);
  if (r.exitCode !== 0) {
    throw new ChalkError(
      Code.FailedPrecondition,
      `cp: ${r.stderrText.trim().split("\n").at(-1) || `exit ${r.exitCode}`}`,
    );
  }
  return r.stdoutText;
}

const KIND =
  'if [ -d "$1" ]; then echo dir; elif [ -e "$1" ]; then echo file; elif [ -d "$(dirname -- "$1")" ]; then echo none; else echo noparent; fi';

async function remoteKind(c: Container, path: string): Promise<"dir" | "file" | "none" | "noparent"> {
  return (await run(c, KIND, path)).trim() as "dir" | "file" | "none" | "noparent";
}

/** Collects a process's stderr (bounded) and fails when it exits non-zero. */
async function finished(proc: Process, what: string): Promise<void> {
  let stderr = "";
  proc.stderr.on("data", (d: Buffer) => {
    if (stderr.length < 64 * 1024) stderr += d.toString();
  });
  const exit = await proc.wait();
  if (exit.exitCode !== 0) {
    const why = stderr.trim().split("\n").at(-1) || `exit ${exit.exitCode ?? exit.signal}`;
    throw new ChalkError(Code.FailedPrecondition, `cp: ${what}: ${why}`);
  }
}

async function localSize(path: string): Promise<number> {
  const st = await stat(path);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const name of await readdir(path)) total += await localSize(join(path, name)).catch(() => 0);
  return total;
}

async function upload(local: string, remote: Remote, c: Container): Promise<void> {
  const st = await stat(local).catch((err: unknown) => {
    throw new ChalkError(Code.NotFound, `cp: ${local}: ${(err as Error).message}`, { field: "source" });
  });
  const kind = await remoteKind(c, remote.path);
  if (kind === "noparent")
    throw new ChalkError(Code.NotFound, `cp: ${dirname(remote.path)} does not exist in ${c.name}`);
  const target = kind === "dir" ? join(remote.path, basename(local)) : remote.path;
  if (st.isDirectory() && kind === "file") {
    throw new ChalkError(Code.FailedPrecondition, `cp: cannot copy a directory onto the file ${remote.path}`);
  }
  const progress = new TransferProgress(
    terminal(),
    `copying ${local} to ${c.name}:${target}`,
    await localSize(local),
  );
  const proc = st.isDirectory()
    ? await c.sandbox.spawn([
        "/bin/sh",
        "-c",
        'mkdir -p -- "$1" && exec tar -x -f - --no-same-owner -C "$1"',
        "sh",
        target,
      ])
    : await c.sandbox.spawn([
        "/bin/sh",
        "-c",
        'cat > "$1" && chmod "$2" "$1"',
        "sh",
        target,
        (st.mode & 0o7777).toString(8),
      ]);
  proc.stdout.on("error", () => undefined).resume();
  const done = finished(proc, `writing ${target}`);
  // Observed at once: the remote side may fail while we still write or read, and that must not
  // become an unhandled rejection (it is awaited, and reported, below).
  done.catch(() => undefined);
  let sent = 0;
  try {
    const source = st.isDirectory() ? tar.c({ cwd: local, portable: true }, ["."]) : createReadStream(local);
    for await (const chunk of source as AsyncIterable<Buffer>) {
      await proc.stdin.write(chunk);
      sent += chunk.byteLength;
      progress.update(sent);
    }
    await proc.stdin.end();
    await done;
  } catch (err) {
    progress.abort();
    await proc.signal("SIGKILL").catch(() => undefined);
    await done.catch(() => undefined);
    throw err;
  }
  progress.finish(`copied ${local} to ${c.name}:${target}`);
}

/**
 * Unpacks a tar stream into `dir` with node-tar, which strips absolute paths and "..", and refuses
 * to write through symlinks, so a hostile archive cannot place files outside `dir`; owners are not
 * copied. The first problem (strict mode) stops the unpacking and fails the copy.
 */
async function unpackInto(dir: string, chunks: AsyncIterable<Buffer>, from: string): Promise<void> {
  const unpack = tar.x({ cwd: dir, preserveOwner: false, strict: true });
  let failed = false;
  const finished = new Promise<void>((resolve, reject) => {
    unpack.on("close", () => resolve());
    // Every later entry may fail too: listen for all of them, report the first.
    unpack.on("error", (err: Error) => {
      if (failed) return;
      failed = true;
      reject(new ChalkError(Code.FailedPrecondition, `cp: refused the archive from ${from}: ${err.message}`));
    });
  });
  // Awaited below; until then a rejection must not count as unhandled (and end the process).
  finished.catch(() => undefined);
  for await (const chunk of chunks) {
    if (failed) break;
    if (!unpack.write(chunk)) await Promise.race([once(unpack, "drain"), finished]);
  }
  if (!failed) unpack.end();
  await finished;
}

async function download(remote: Remote, local: string, c: Container): Promise<void> {
  const kind = await remoteKind(c, remote.path);
  if (kind === "none" || kind === "noparent")
    throw new ChalkError(Code.NotFound, `cp: ${c.name}:${remote.path} does not exist`);
  const existing = await stat(local).catch(() => undefined);
  const target = existing?.isDirectory() ? join(local, basename(remote.path)) : local;
  const size = await run(c, kind === "dir" ? 'du -sb -- "$1" | cut -f1' : 'wc -c < "$1"', remote.path)
    .then((s) => Number.parseInt(s, 10))
    .catch(() => Number.NaN);
  if (kind === "dir" && (await stat(target).catch(() => undefined))) {
    throw new ChalkError(Code.AlreadyExists, `cp: ${target} exists; remove it or copy to another path`, {
      field: "destination",
    });
  }
  const progress = new TransferProgress(
    terminal(),
    `copying ${c.name}:${remote.path} to ${target}`,
    Number.isFinite(size) ? size : undefined,
  );
  // Written beside the target, then renamed: the target appears complete or not at all.
  const tmp = join(dirname(target), `.${basename(target)}.chalk-cp-${process.pid}-${Date.now()}`);
  const proc = await c.sandbox.spawn(
    kind === "dir" ? ["tar", "-c", "-f", "-", "-C", remote.path, "."] : ["cat", "--", remote.path],
  );
  await proc.stdin.end();
  const done = finished(proc, `reading ${remote.path}`);
  // Observed at once: the remote side may fail while we still write or read, and that must not
  // become an unhandled rejection (it is awaited, and reported, below).
  done.catch(() => undefined);
  let received = 0;
  const counted = async function* () {
    for await (const chunk of proc.stdout as AsyncIterable<Buffer>) {
      received += chunk.byteLength;
      progress.update(received);
      yield chunk;
    }
  };
  try {
    if (kind === "dir") {
      await mkdir(tmp, { mode: 0o755 });
      await unpackInto(tmp, counted(), c.name);
    } else {
      await pipeline(counted(), createWriteStream(tmp, { flags: "wx", mode: 0o644 }));
    }
    await done;
    await rename(tmp, target);
  } catch (err) {
    progress.abort();
    await proc.signal("SIGKILL").catch(() => undefined);
    await done.catch(() => undefined);
    // Writes node-tar had started may still land: retry until the directory is gone.
    await rm(tmp, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 }).catch(() => undefined);
    throw err;
  }
  progress.finish(`copied ${c.name}:${remote.path} to ${target}`);
}

/** `chalk cp`. */
export function cpCommand(): Command {
  return serverCommand(
    "cp",
    "Copy files or directories between this machine and a running container (through its tar), with progress",
    ["chalk cp ./model.bin web:/models/", "chalk cp web:/var/log/app ./logs", "chalk cp ./src web:/app/src"],
  )
    .argument("<source>", "LOCAL or CONTAINER:/path")
    .argument("<destination>", "CONTAINER:/path or LOCAL")
    .action(async (source: string, destination: string, _o: unknown, cmd: Command) => {
      const from = parseRemote(source);
      const to = parseRemote(destination);
      if ((from === undefined) === (to === undefined)) {
        throw new UsageError("cp: exactly one of source and destination must be CONTAINER:/path");
      }
      const sdk = await sdkFor(cmd);
      if (to) await upload(source, to, await runningContainer(to.container, sdk));
      else await download(from!, destination, await runningContainer(from!.container, sdk));
    });
}
