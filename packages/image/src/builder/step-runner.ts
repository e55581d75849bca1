import type { Readable } from "node:stream";
import { ChalkError, Code } from "@chalk/core";
import type { SandboxCreateOptions, SandboxRuntime } from "@chalk/sandbox";
import type { StepCommand } from "../step-commands.js";
import type { StepLimits } from "./step-limits.js";

/** What one build step needs to run. */
export interface StepRun {
  runtime: SandboxRuntime;
  /** Layer directories, bottom first (read-only lower layers). */
  layers: readonly string[];
  /** Empty directory that receives the step's changes (the overlay upper dir). */
  upperDir: string;
  /** The image's environment at this step. */
  env: Record<string, string>;
  /** Working directory of the commands. */
  workdir: string;
  commands: readonly StepCommand[];
  /** Receives the commands' output as it arrives. */
  onOutput: (stream: "stdout" | "stderr", text: string) => void;
  timeoutSecs: number;
  /** Memory, CPU and processes the step's sandbox may use. */
  limits: StepLimits;
  labels: Record<string, string>;
  /** Host directories mounted read-only (the build CA bundle). */
  mounts: readonly { source: string; target: string }[];
  /** Environment of the commands only (not part of the image). */
  buildEnv: Record<string, string>;
}

async function pump(
  stream: Readable,
  name: "stdout" | "stderr",
  onOutput: StepRun["onOutput"],
  tail: { text: string },
): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    const text = decoder.decode(chunk as Uint8Array, { stream: true });
    if (text) {
      onOutput(name, text);
      tail.text = (tail.text + text).slice(-4000);
    }
  }
  const rest = decoder.decode();
  if (rest) onOutput(name, rest);
}

/** The last non-empty lines of a command's output, for the error message. */
function lastLines(text: string, n: number): string {
  return text
    .split("\n")
    .map((l) => l.trimEnd())
    .filter((l) => l !== "")
    .slice(-n)
    .join("\n");
}

/**
 * Runs a step's commands, in order, in one gVisor sandbox with network over the layers so far; the
 * sandbox's writes land in `upperDir`. The first command that fails ends the step with
 * failed_precondition, quoting the end of its output (the full output went to `onOutput`). The
 * sandbox is stopped whatever happens.
 */
export async function runStep(run: StepRun): Promise<void> {
  const options: SandboxCreateOptions = {
    rootfs: run.layers,
    network: true,
    env: run.env,
    workdir: "/",
    writableLayerDir: run.upperDir,
    labels: run.labels,
    mounts: run.mounts.map((m) => ({ ...m, readOnly: true })),
    memory: run.limits.memory,
    cpu: run.limits.cpu,
    pids: run.limits.pids,
  };
  const sandbox = await run.runtime.create(options);
  try {
    for (const cmd of run.commands) {
      const proc = await sandbox.spawn(cmd.argv, {
        env: { ...run.buildEnv, ...(cmd.env ?? {}) },
        workdir: run.workdir,
        timeoutSecs: run.timeoutSecs,
      });
      const tail = { text: "" };
      await Promise.all([
        pump(proc.stdout, "stdout", run.onOutput, tail),
        pump(proc.stderr, "stderr", run.onOutput, tail),
      ]);
      const exit = await proc.wait();
      if (exit.exitCode === 0) continue;
      const how = exit.timedOut
        ? `timed out after ${run.timeoutSecs} s`
        : exit.oomKilled
          ? "was killed for using more memory than the build allows"
          : exit.signal
            ? `was killed by ${exit.signal}`
            : `exited with code ${exit.exitCode}`;
      const quote = lastLines(tail.text, 6);
      throw new ChalkError(
        Code.FailedPrecondition,
        `${cmd.argv.slice(0, 3).join(" ")} ${how}${quote ? `:\n${quote}` : ""}`,
        {
          details: { exitCode: exit.exitCode, signal: exit.signal, timedOut: exit.timedOut },
        },
      );
    }
  } finally {
    await sandbox.stop().catch(() => undefined);
  }
}
