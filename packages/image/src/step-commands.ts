import type { AptInstallStep, PipInstallStep, RunCommandsStep, WorkdirStep } from "@chalk/proto/image/v1";

/** One process of a build step: an argv (never a shell line built from user input) and extra env. */
export interface StepCommand {
  argv: string[];
  env?: Record<string, string>;
}

/**
 * `pip install` of a pip step. Requirements follow `--`, so none is read as an option; pip's cache
 * stays out of the layer.
 */
export function pipCommands(step: PipInstallStep): StepCommand[] {
  const argv = ["pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--no-input"];
  if (step.indexUrl) argv.push("--index-url", step.indexUrl);
  for (const u of step.extraIndexUrls) argv.push("--extra-index-url", u);
  for (const u of step.findLinks) argv.push("--find-links", u);
  argv.push("--", ...step.packages);
  return [{ argv, env: { PIP_ROOT_USER_ACTION: "ignore" } }];
}

const APT_ENV = { DEBIAN_FRONTEND: "noninteractive" };

/** `apt-get update`, `apt-get install` (packages after `--`), then the package lists are removed. */
export function aptCommands(step: AptInstallStep): StepCommand[] {
  return [
    { argv: ["apt-get", "update"], env: APT_ENV },
    { argv: ["apt-get", "install", "-y", "--no-install-recommends", "--", ...step.packages], env: APT_ENV },
    // A constant script: no user input reaches this shell.
    { argv: ["/bin/sh", "-c", "rm -rf /var/lib/apt/lists/*"] },
  ];
}

/** Each command as `/bin/sh -c <command>`: the command is one argv element, never spliced into a line. */
export function runCommands(step: RunCommandsStep): StepCommand[] {
  return step.commands.map((c) => ({ argv: ["/bin/sh", "-c", c] }));
}

/** Creates the working directory (and its parents) when missing. */
export function workdirCommands(step: WorkdirStep): StepCommand[] {
  return [{ argv: ["mkdir", "-p", "--", step.path] }];
}
