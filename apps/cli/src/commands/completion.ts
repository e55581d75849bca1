/**
 * `chalk completion bash|zsh|fish`: shell completion scripts generated from the command tree, so
 * they always match the commands and flags of this version.
 */
import { Argument, type Command } from "commander";
import { subcommand } from "../command.js";

interface Node {
  path: string[];
  cmd: Command;
}

function walk(cmd: Command, path: string[] = []): Node[] {
  return [{ path, cmd }, ...cmd.commands.flatMap((c) => walk(c, [...path, c.name()]))];
}

function flagsOf(cmd: Command): string[] {
  return [...cmd.options.flatMap((o) => [o.long, o.short].filter((f): f is string => !!f)), "--help"];
}

function bash(root: Command): string {
  const nodes = walk(root);
  const key = (p: string[]) => p.join(" ");
  const descend = nodes
    .filter((n) => n.cmd.commands.length > 0)
    .map(
      (n) =>
        `      "${key(n.path)}") case "$w" in ${n.cmd.commands.map((c) => c.name()).join("|")}) path="${key(n.path)}${n.path.length ? " " : ""}$w";; esac;;`,
    )
    .join("\n");
  const words = nodes
    .map(
      (n) =>
        `    "${key(n.path)}") words="${[...n.cmd.commands.map((c) => c.name()), ...flagsOf(n.cmd)].join(" ")}";;`,
    )
    .join("\n");
  return `# chalk completion for bash: source <(chalk completion bash)
_chalk() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" words="" w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ $w == -- ]] && return 0
    [[ $w == -* ]] && continue
    case "$path" in
${descend}
    esac
  done
  case "$path" in
${words}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _chalk chalk
`;
}

function zsh(root: Command): string {
  return `#compdef chalk
# chalk completion for zsh: source <(chalk completion zsh)  (uses zsh's bash completion support)
autoload -U +X bashcompinit && bashcompinit
${bash(root).split("\n").slice(1).join("\n")}`;
}

function fishQuote(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

function fish(root: Command): string {
  const lines = ["# chalk completion for fish: chalk completion fish | source", "complete -c chalk -f"];
  for (const n of walk(root)) {
    const children = n.cmd.commands.map((c) => c.name());
    const inNode =
      n.path.length === 0
        ? "__fish_use_subcommand"
        : `__fish_seen_subcommand_from ${n.path.at(-1)}${children.length ? `; and not __fish_seen_subcommand_from ${children.join(" ")}` : ""}`;
    for (const c of n.cmd.commands) {
      lines.push(
        `complete -c chalk -n ${fishQuote(inNode)} -a ${c.name()} -d ${fishQuote(c.description().split(":")[0] ?? "")}`,
      );
    }
    if (n.path.length === 0) continue;
    for (const o of n.cmd.options) {
      const parts = [`complete -c chalk -n ${fishQuote(inNode)}`];
      if (o.long) parts.push(`-l ${o.long.replace(/^--/, "")}`);
      if (o.short) parts.push(`-s ${o.short.replace(/^-/, "")}`);
      if (o.required || o.optional)
        parts.push(o.argChoices ? `-xa ${fishQuote(o.argChoices.join(" "))}` : "-r");
      parts.push(`-d ${fishQuote(o.description)}`);
      lines.push(parts.join(" "));
    }
  }
  return `${lines.join("\n")}\n`;
}

/** `chalk completion`; `root` is the whole program. */
export function completionCommand(root: () => Command): Command {
  return subcommand("completion", "Print a shell completion script", [
    "source <(chalk completion bash)          # in ~/.bashrc",
    "source <(chalk completion zsh)           # in ~/.zshrc",
    "chalk completion fish > ~/.config/fish/completions/chalk.fish",
  ])
    .addArgument(new Argument("<shell>", "bash, zsh or fish").choices(["bash", "zsh", "fish"]))
    .action((shell: string) => {
      const program = root();
      process.stdout.write(shell === "bash" ? bash(program) : shell === "zsh" ? zsh(program) : fish(program));
    });
}
