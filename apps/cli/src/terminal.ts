import pc from "picocolors";

/**
 * What the terminal allows. Human output gets colour only on a TTY without `NO_COLOR`; progress is
 * animated only when stderr is a TTY, `NO_COLOR` is unset, `TERM` is not `dumb` and `CI` is unset (a CI
 * runner's pseudo-terminal is a log, the rule ora and is-interactive follow), and is plain lines on
 * stderr otherwise, so stdout stays clean for pipes.
 */
export interface Terminal {
  /** stdout is a terminal. */
  stdoutTTY: boolean;
  /** Colour on stdout. */
  color: boolean;
  /** Animated progress on stderr (spinners, bars); plain lines otherwise. */
  live: boolean;
  /** Colours for stdout (no-ops without colour). */
  out: ReturnType<typeof pc.createColors>;
  /** Colours for stderr (no-ops unless live). */
  err: ReturnType<typeof pc.createColors>;
  /** Columns of stderr (80 when unknown). */
  columns(): number;
}

/** The terminal of this process (`env` and `streams` default to the process's own). */
export function terminal(
  env: NodeJS.ProcessEnv = process.env,
  streams: { stdout: { isTTY?: boolean }; stderr: { isTTY?: boolean; columns?: number } } = process,
): Terminal {
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== "";
  const stdoutTTY = streams.stdout.isTTY === true;
  const color = stdoutTTY && !noColor;
  const live = streams.stderr.isTTY === true && !noColor && env.TERM !== "dumb" && !("CI" in env);
  return {
    stdoutTTY,
    color,
    live,
    out: pc.createColors(color),
    err: pc.createColors(live),
    columns: () => streams.stderr.columns || 80,
  };
}

/** Writes a line to stderr (progress and notes, never results). */
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}
