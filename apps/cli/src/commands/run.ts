import { randomBytes } from "node:crypto";
import { once } from "node:events";
import {
  ChalkError,
  Container,
  type ContainerImage,
  describeContainer,
  Image,
  Secret,
} from "@chalk/container";
import confirm from "@inquirer/confirm";
import type { Command } from "commander";
import ora from "ora";
import { runAttached } from "../attach.js";
import { buildWithProgress } from "../build.js";
import type { SdkConnectOptions } from "../client.js";
import { intFlag, printJson, sdkFor, serverCommand } from "../command.js";
import { envFlags, parseEnvFlags } from "../env-flags.js";
import { ExitCode, UsageError } from "../errors.js";
import { loadImageFile } from "../image-file.js";
import { containerJson } from "../json.js";
import { TransferProgress } from "../progress/transfer-progress.js";
import { note, type Terminal, terminal } from "../terminal.js";

const collect = (v: string, prev: string[] = []) => [...prev, v];

interface RunFlags {
  imageFile?: string;
  name?: string;
  cpu?: string;
  memory?: string;
  gpu?: string;
  env?: string[];
  secret?: string[];
  secretFromLocalEnv?: string[];
  integration?: string[];
  volume?: string[];
  port?: string;
  detach?: boolean;
  interactive?: boolean;
  tty?: boolean;
  output: string;
}

/**
 * The operands of `chalk run`: the image reference (unless `--image-file`), then `--` and the
 * command (everything after `--`, flags included).
 */
export function runOperands(
  operands: readonly string[],
  rawArgs: readonly string[],
  hasImageFile: boolean,
): { image: string | undefined; command: string[] } {
  const dash = rawArgs.indexOf("--");
  const command = dash >= 0 ? rawArgs.slice(dash + 1) : [];
  const before = operands.slice(0, operands.length - command.length);
  if (dash < 0 && before.length > (hasImageFile ? 0 : 1)) {
    const extra = before.slice(hasImageFile ? 0 : 1).join(" ");
    throw new UsageError(`run: put the command after -- (chalk run … -- ${extra})`);
  }
  if (hasImageFile) {
    if (before.length > 0) throw new UsageError("run: give an image or --image-file, not both");
    return { image: undefined, command };
  }
  if (before.length > 1) throw new UsageError(`run: unexpected ${JSON.stringify(before[1])} before --`);
  return { image: before[0], command };
}

function volumesOf(values: readonly string[]): [string, string][] {
  return values.map((v) => {
    const colon = v.indexOf(":");
    if (colon <= 0 || !v.slice(colon + 1).startsWith("/")) {
      throw new UsageError(`-v: ${JSON.stringify(v)} is not VOLUME:/absolute/path`);
    }
    return [v.slice(0, colon), v.slice(colon + 1)];
  });
}

/** `chalk run`: builds the image, uploads local files, starts a container, then follows it. */
export function runCommand(): Command {
  return envFlags(
    serverCommand(
      "run",
      "Run a container: build its image (with progress), upload local files, start it, then follow its logs, run a command in it, or detach. " +
        "Exit code: with a command, the command's (125 when chalk or the server fails, 126 when it cannot be run, 127 when it is not found); " +
        "with --detach, 0 once the container started, even if its entrypoint then fails (as docker run -d): `chalk ps -a` and `chalk inspect` (exitCode) show how it ended",
      [
        "chalk run --name web --image-file ./image.ts -p 8080 --detach",
        "chalk run python:3.12-slim -- python -c 'print(1)'",
        "chalk run --image-file spec.ts --secret OPENAI_API_KEY -v training-data:/data -- python train.py",
        "chalk run -it --image-file spec.ts -- bash",
      ],
    ),
  )
    .argument("[image]", "image reference (or --image-file)")
    .argument("[command...]", "a command to run in the container (after --)")
    .option("--image-file <file>", "a module whose default export is an Image (.ts through tsx, .js, .mjs)")
    .option("--name <name>", "container name (default: run-<random>)")
    .option("--cpu <cores>", 'CPU: "2", "0.5", "500m"')
    .option("--memory <bytes>", 'memory: "512Mi", "2Gi"')
    .option("--gpu <gpu>", 'GPU: "nvidia-l4:1", "nvidia-l4", "2"')
    .option("--secret <name>", "a secret of the managed store, injected as $NAME (repeatable)", collect)
    .option(
      "--secret-from-local-env <name>",
      "this environment's $NAME, stored for this run only (repeatable)",
      collect,
    )
    .option("--integration <name>", "every key of an integration (repeatable)", collect)
    .option("-v, --volume <volume:/path>", "mount a named volume (repeatable)", collect)
    .option("-p, --port <port>", "a port the host reaches at the container's address")
    .option(
      "-d, --detach",
      "print the container id and exit 0 once it started, leaving it running (a command becomes its entrypoint; how it ends shows in ps -a and inspect)",
    )
    .option("-i, --interactive", "with a command: stream stdin to it")
    .option("-t, --tty", "with a command: run it on a terminal")
    .option("-o, --output <format>", "with --detach: text (the id) or json", "text")
    .action(async (imageArg: string | undefined, rest: string[], opts: RunFlags, cmd: Command) => {
      const { image: ref, command } = runOperands(
        [...(imageArg === undefined ? [] : [imageArg]), ...rest],
        process.argv.slice(2),
        opts.imageFile !== undefined,
      );
      if (ref === undefined && opts.imageFile === undefined)
        throw new UsageError("run: an image or --image-file is required");
      if (!["text", "json"].includes(opts.output)) throw new UsageError("--output: text or json");
      if (opts.output === "json" && !opts.detach) throw new UsageError("--output json needs --detach");
      if ((opts.interactive || opts.tty) && (command.length === 0 || opts.detach)) {
        throw new UsageError("-i and -t need a command and no --detach");
      }
      const env = parseEnvFlags(opts.env ?? []);
      const volumes = volumesOf(opts.volume ?? []);
      const port = opts.port === undefined ? undefined : intFlag("--port", opts.port, 1, 65535);
      const sdk = await sdkFor(cmd);
      const term = terminal();
      const image: ContainerImage = opts.imageFile ? await loadImageFile(opts.imageFile) : ref!;
      const container = new Container({
        ...sdk,
        image,
        name: opts.name ?? `run-${randomBytes(4).toString("hex")}`,
        ...(opts.cpu === undefined ? {} : { cpu: opts.cpu }),
        ...(opts.memory === undefined ? {} : { memory: opts.memory }),
        ...(opts.gpu === undefined ? {} : { gpu: opts.gpu }),
        env,
        secrets: [
          ...(opts.secret ?? []).map((n) => Secret.fromEnv(n)),
          ...(opts.secretFromLocalEnv ?? []).map((n) => Secret.fromLocalEnv(n)),
          ...(opts.integration ?? []).map((n) => Secret.fromIntegration(n)),
        ],
        volumes,
        ...(port === undefined ? {} : { port }),
        ...(opts.detach && command.length > 0 ? { entrypoint: command } : {}),
      });
      if (image instanceof Image) await buildWithProgress(image, sdk, term);
      await start(container, image, term);
      if (opts.detach) {
        if (opts.output === "json") printJson(containerJson(await describeContainer(container.id, sdk)));
        else process.stdout.write(`${container.id}\n`);
        return;
      }
      if (command.length > 0) {
        let code: number;
        try {
          code = await runAttached(container, command, {
            stdin: opts.interactive === true,
            tty: opts.tty === true,
          });
        } finally {
          await container.stop().catch(() => undefined);
        }
        throw new ExitCode(code);
      }
      await follow(container, sdk);
    });
}

/** Reasons of a container whose entrypoint ran and ended (not of a run that failed to start it). */
const ENDED_AFTER_RUNNING = new Set(["Completed", "Error", "Signal", "OOMKilled"]);

/** Uploads local files (a progress bar) and waits for Running (a spinner). */
async function start(container: Container, image: ContainerImage, term: Terminal): Promise<void> {
  const uploads = image instanceof Image && image.localUploads().length > 0;
  let upload: TransferProgress | undefined;
  let spinner: ReturnType<typeof ora> | undefined;
  const waiting = () => {
    if (term.live)
      spinner = ora({
        stream: process.stderr,
        text: `starting ${container.name}`,
        discardStdin: false,
      }).start();
    else note(`starting ${container.name}`);
  };
  if (!uploads) waiting();
  try {
    await container.run({
      onUploadProgress: (p) => {
        upload ??= new TransferProgress(term, "uploading local files", p.bytesTotal);
        upload.update(p.bytesSent, p.bytesTotal);
        if (p.filesSent === p.filesTotal && !spinner) {
          upload.finish(`uploaded ${p.filesTotal} local file${p.filesTotal === 1 ? "" : "s"}`);
          waiting();
        }
      },
    });
  } catch (err) {
    // An entrypoint that ended at once makes run() report how it ended; the container ran, and
    // its logs and status say the rest (as `docker run` starts a container that exits at once).
    if (!ENDED_AFTER_RUNNING.has(String(ChalkError.from(err).details.reason))) {
      upload?.abort();
      spinner?.fail(`${container.name} did not start`);
      throw err;
    }
  }
  const address = container.info.address ? ` at ${container.info.address}` : "";
  const text = `${container.name} is ${container.info.status}${address} (${container.id})`;
  if (spinner) spinner.succeed(text);
  else note(text);
}

/** Follows the entrypoint's output; Ctrl-C asks whether to stop the container. */
async function follow(container: Container, sdk: SdkConnectOptions): Promise<void> {
  const ac = new AbortController();
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
    ac.abort();
  };
  process.on("SIGINT", onSigint);
  try {
    for await (const text of container.logs({ follow: true, signal: ac.signal })) {
      if (!process.stdout.write(text)) await once(process.stdout, "drain");
    }
  } catch (err) {
    if (!interrupted) throw err;
  } finally {
    process.off("SIGINT", onSigint);
  }
  if (interrupted) return askToStop(container);
  const record = await describeContainer(container.id, sdk);
  const why = record.statusMessage ? `: ${record.statusMessage}` : "";
  note(`${record.name} is ${record.status}${why}`);
  if (record.status === "Failed") throw new ExitCode(1);
}

async function askToStop(container: Container): Promise<void> {
  const keep = () =>
    note(`${container.name} keeps running (chalk logs -f ${container.name}; chalk stop ${container.name})`);
  if (!process.stdin.isTTY) {
    keep();
    throw new ExitCode(130);
  }
  let stop: boolean;
  try {
    stop = await confirm(
      { message: `Stop container ${container.name}?`, default: false },
      { output: process.stderr },
    );
  } catch {
    // A second Ctrl-C at the question: leave it running.
    keep();
    throw new ExitCode(130);
  }
  if (!stop) return keep();
  await container.stop({ gracePeriodSeconds: 10 });
  note(`${container.name} stopped`);
}
