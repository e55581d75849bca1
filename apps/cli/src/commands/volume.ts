import { mkdir, stat } from "node:fs/promises";
import { basename, join, relative } from "node:path";
import { ChalkError, Code } from "@chalk/core";
import { Volume, type VolumeFileInfo } from "@chalk/volume";
import type { Command } from "commander";
import { forEachName, outputOption, printJson, sdkFor, serverCommand, subcommand } from "../command.js";
import { formatAge, formatBytes, table } from "../format.js";
import { volumeFileJson, volumeJson } from "../json.js";
import { TransferProgress } from "../progress/transfer-progress.js";
import { terminal } from "../terminal.js";

/** `chalk volume …`: named volumes and their files. */
export function volumeCommand(): Command {
  const volume = subcommand("volume", "Manage named volumes and their files", [
    "chalk volume create training-data",
    "chalk volume put training-data ./inputs inputs",
    "chalk volume ls-files training-data inputs/",
  ]);
  volume.addCommand(
    serverCommand("ls", "List volumes", ["chalk volume ls", "chalk volume ls -o json"])
      .addOption(outputOption(["table", "json"]))
      .action(async (opts: { output: string }, cmd: Command) => {
        const vols = await Volume.list(await sdkFor(cmd));
        if (opts.output === "json") return printJson(vols.map(volumeJson));
        const term = terminal();
        process.stdout.write(
          table(
            ["NAME", "CREATED"].map((h) => term.out.bold(h)),
            vols.map((v) => [v.name, formatAge(v.createdAt)]),
          ),
        );
      }),
  );
  volume.addCommand(
    serverCommand("create", "Create a volume", ["chalk volume create training-data"])
      .argument("<name>", "volume name")
      .action(async (name: string, _o: unknown, cmd: Command) => {
        await new Volume(name, await sdkFor(cmd)).create();
        process.stdout.write(`${name}\n`);
      }),
  );
  volume.addCommand(
    serverCommand("rm", "Delete volumes and everything in them", [
      "chalk volume rm scratch",
      "chalk volume rm a b c",
    ])
      .argument("<name...>", "volume names")
      .action(async (names: string[], _o: unknown, cmd: Command) => {
        const sdk = await sdkFor(cmd);
        await forEachName(names, async (name) => {
          await new Volume(name, sdk).delete();
          return name;
        });
      }),
  );
  volume.addCommand(
    serverCommand("ls-files", "List a volume's files (under a prefix)", [
      "chalk volume ls-files training-data",
      "chalk volume ls-files training-data inputs/ -o json",
    ])
      .argument("<name>", "volume name")
      .argument("[prefix]", "only paths starting with this", "")
      .addOption(outputOption(["table", "json"]))
      .action(async (name: string, prefix: string, opts: { output: string }, cmd: Command) => {
        const files = await new Volume(name, await sdkFor(cmd)).listFiles(prefix);
        if (opts.output === "json") return printJson(files.map(volumeFileJson));
        const term = terminal();
        const rows = files.map((f) => [
          f.path,
          formatBytes(f.size),
          `0${f.mode.toString(8)}`,
          formatAge(f.modifiedAt),
        ]);
        process.stdout.write(
          table(
            ["PATH", "SIZE", "MODE", "MODIFIED"].map((h) => term.out.bold(h)),
            rows,
          ),
        );
      }),
  );
  volume.addCommand(
    serverCommand("put", "Upload a local file or directory into a volume (with a progress bar)", [
      "chalk volume put training-data ./example.txt inputs/example.txt",
      "chalk volume put training-data ./dataset datasets/v1",
    ])
      .argument("<name>", "volume name")
      .argument("<local>", "local file or directory")
      .argument(
        "[remote]",
        "volume path of the file, or directory receiving the directory's contents (default: the file's name; the root)",
      )
      .action(async (name: string, local: string, remote: string | undefined, _o: unknown, cmd: Command) => {
        const st = await stat(local).catch((err: unknown) => {
          throw new ChalkError(Code.NotFound, `${local}: ${(err as Error).message}`, { field: "local" });
        });
        const vol = new Volume(name, await sdkFor(cmd));
        const term = terminal();
        let progress: TransferProgress | undefined;
        const onProgress = (p: { bytesSent: number; bytesTotal: number }) => {
          progress ??= new TransferProgress(term, `uploading ${local}`, p.bytesTotal);
          progress.update(p.bytesSent);
        };
        try {
          if (st.isDirectory()) {
            const files = await vol.putDir(local, remote ?? "", { onProgress });
            progress?.finish(`uploaded ${files.length} files to ${name}:${remote ?? "/"}`);
          } else {
            const f = await vol.putFileFromPath(remote ?? basename(local), local, { onProgress });
            progress?.finish(`uploaded ${name}:${f.path}`);
          }
        } catch (err) {
          progress?.abort();
          throw err;
        }
      }),
  );
  volume.addCommand(
    serverCommand("get", "Download a file or directory from a volume (with a progress bar; - for stdout)", [
      "chalk volume get training-data inputs/example.txt ./example.txt",
      "chalk volume get training-data datasets/v1 ./v1",
      "chalk volume get training-data inputs/example.txt - | head",
    ])
      .argument("<name>", "volume name")
      .argument("<remote>", "volume path of a file or directory")
      .argument("[local]", "local path, or - for stdout (default: the remote name, here)")
      .action(async (name: string, remote: string, local: string | undefined, _o: unknown, cmd: Command) => {
        await getFromVolume(new Volume(name, await sdkFor(cmd)), remote, local);
      }),
  );
  return volume;
}

/** Downloads a volume file (or every file under a directory) with progress. */
async function getFromVolume(vol: Volume, remote: string, local: string | undefined): Promise<void> {
  const path = remote.replace(/^\/+|\/+$/g, "");
  const listed = await vol.listFiles(path);
  const exact = listed.find((f) => f.path === path);
  const under = path === "" ? listed : listed.filter((f) => f.path.startsWith(`${path}/`));
  if (!exact && under.length === 0) {
    throw new ChalkError(Code.NotFound, `${vol.name}:${remote} not found`, { field: "remote" });
  }
  if (local === "-") {
    if (!exact)
      throw new ChalkError(Code.InvalidArgument, `${vol.name}:${remote} is a directory; - takes one file`, {
        field: "local",
      });
    for await (const chunk of vol.readFileStream(path)) process.stdout.write(chunk);
    return;
  }
  const term = terminal();
  const files: VolumeFileInfo[] = exact ? [exact] : under;
  const total = files.reduce((n, f) => n + f.size, 0);
  let target = local ?? (basename(path) || vol.name);
  const existing = await stat(target).catch(() => undefined);
  if (exact && existing?.isDirectory()) target = join(target, basename(path));
  const progress = new TransferProgress(term, `downloading ${vol.name}:${remote}`, total);
  let done = 0;
  try {
    for (const f of files) {
      const dest = exact ? target : join(target, relative(path, f.path));
      await mkdir(join(dest, ".."), { recursive: true });
      const before = done;
      await vol.readFileToPath(f.path, dest, {
        onProgress: (bytes) => {
          done = before + bytes;
          progress.update(done);
        },
      });
      done = before + f.size;
      progress.update(done);
    }
  } catch (err) {
    progress.abort();
    throw err;
  }
  progress.finish(`downloaded ${files.length} file${files.length === 1 ? "" : "s"} to ${target}`);
}
