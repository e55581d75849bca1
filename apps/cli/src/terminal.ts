import pc from "picocolors";

/**
 * What the terminal allows. Human output gets colour only on a TTY without `NO_COLOR`; progress is
 * animated only when stderr is a TTY and `NO_COLOR` is unset, and is plain lines on stderr otherwise,
 * so stdout stays clean for pipes.
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

/** The terminal of this process. */
export function terminal(): Terminal {
  const noColor = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== "";
  const stdoutTTY = process.stdout.isTTY === true;
  const color = stdoutTTY && !noColor;
  const live = process.stderr.isTTY === true && !noColor && process.env.TERM !== "dumb";
  return {
    stdoutTTY,
    color,
    live,
    out: pc.createColors(color),
    err: pc.createColors(live),
    columns: () => process.stderr.columns || 80,
  };
}

/** Writes a line to stderr (progress and notes, never results). */
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}
