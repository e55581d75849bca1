import type { Step } from "@chalk/proto/image/v1";
import { aptCommands, pipCommands, runCommands, type StepCommand } from "./step-commands.js";

/** What {@link renderDockerfile} needs of an image. */
export interface DockerfileInput {
  base: { kind: "debianSlim"; pythonVersion: string } | { kind: "registry"; reference: string };
  ops: readonly (
    | { kind: "step"; step: Step }
    | { kind: "copy"; what: "file" | "dir"; src: string; dest: string; mode: number | undefined }
  )[];
  entrypoint: readonly string[];
  uploads: readonly { kind: "file" | "dir"; source: string; dest: string }[];
}

/** Quotes one shell word only when it needs it (`requests` stays, `a b` → `'a b'`). */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The shell text of one command: a constant `/bin/sh -c` script as it is, anything else quoted. */
function commandText(c: StepCommand): string {
  if (c.argv[0] === "/bin/sh" && c.argv[1] === "-c" && c.argv.length === 3) return c.argv[2]!;
  return c.argv.map(shellQuote).join(" ");
}

function run(text: string): string {
  // A multi-line script cannot follow RUN in shell form; the exec form keeps it exactly.
  return text.includes("\n") ? `RUN ${JSON.stringify(["/bin/sh", "-c", text])}` : `RUN ${text}`;
}

/** A double-quoted Dockerfile value, with `$` escaped (the builder does not expand variables). */
function envValue(v: string): string {
  return JSON.stringify(v).replaceAll("$", "\\$");
}

function copyLine(src: string, dest: string, mode: number | undefined, dir: boolean): string {
  const s = dir ? `${src.replace(/\/+$/, "")}/` : src;
  const d = dir ? `${dest}/` : dest;
  const chmod = mode === undefined ? "" : `--chmod=${mode.toString(8).padStart(4, "0")} `;
  const plain = /^[^\s"'\\$]+$/;
  return plain.test(s) && plain.test(d) ? `COPY ${chmod}${s} ${d}` : `COPY ${chmod}${JSON.stringify([s, d])}`;
}

/** Renders an image as an equivalent Dockerfile, for reading. */
export function renderDockerfile(image: DockerfileInput): string {
  const lines: string[] = [];
  lines.push(
    image.base.kind === "debianSlim"
      ? `FROM python:${image.base.pythonVersion}-slim`
      : `FROM ${image.base.reference}`,
  );
  for (const op of image.ops) {
    if (op.kind === "copy") {
      lines.push(copyLine(op.src, op.dest, op.mode, op.what === "dir"));
      continue;
    }
    const k = op.step.kind;
    switch (k.case) {
      case "pipInstall":
        lines.push(run(pipCommands(k.value).map(commandText).join(" && ")));
        break;
      case "aptInstall":
        lines.push(run(aptCommands(k.value).map(commandText).join(" && ")));
        break;
      case "runCommands":
        for (const c of runCommands(k.value)) lines.push(run(commandText(c)));
        break;
      case "env":
        lines.push(`ENV ${k.value.vars.map((v) => `${v.name}=${envValue(v.value)}`).join(" ")}`);
        break;
      case "workdir":
        lines.push(`WORKDIR ${k.value.path}`);
        break;
      case "addFiles":
        lines.push(`# ${k.value.files.length} files copied into the image`);
        break;
      default:
        break;
    }
  }
  for (const u of image.uploads) {
    lines.push(
      `# volume: ${u.source} -> ${u.dest} (uploaded to a temporary volume mounted at start; not in the image)`,
    );
  }
  if (image.entrypoint.length > 0) lines.push(`ENTRYPOINT ${JSON.stringify(image.entrypoint)}`);
  return `${lines.join("\n")}\n`;
}
