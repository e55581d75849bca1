/**
 * Live progress of an image build: for each step "step i/n", its description, cached or building,
 * the elapsed time and the tail of its log. On a terminal a spinner (ora) redraws in place; elsewhere
 * plain lines go to stderr (with the whole log). The full log is printed when the build fails.
 */
import type { ImageBuildEvent } from "@chalk/image";
import ora, { type Ora } from "ora";
import { formatDuration } from "../format.js";
import { note, type Terminal } from "../terminal.js";

/** Lines of the running step's log shown under its spinner. */
const TAIL_LINES = 5;
/** Bytes of build log kept for the failure report (the newest). */
const KEPT_LOG_BYTES = 4 * 1024 * 1024;

interface StepState {
  index: number;
  count: number;
  description: string;
  cached: boolean;
  started: number;
}

/** Renders build events; {@link BuildProgress.fail} prints the kept log. */
export class BuildProgress {
  #spinner: Ora | undefined;
  #timer: NodeJS.Timeout | undefined;
  #step: StepState | undefined;
  #tail: string[] = [];
  #partial = "";
  #log: string[] = [];
  #logBytes = 0;
  #cut = 0;

  constructor(private readonly term: Terminal) {}

  /** Handles one event of `ImageClient.getOrBuild`'s `onEvent`. */
  onEvent = (e: ImageBuildEvent): void => {
    if (e.type === "step") this.#start(e);
    else if (e.type === "log") this.#logText(e.text);
    else this.#done(e.cached, e.durationMs);
  };

  #label(s: StepState): string {
    return `step ${s.index + 1}/${s.count} ${s.description}`;
  }

  #start(e: Extract<ImageBuildEvent, { type: "step" }>): void {
    this.#step = { ...e, started: Date.now() };
    this.#tail = [];
    this.#partial = "";
    this.#keep(`#${e.index + 1} ${e.description}${e.cached ? " (cached)" : ""}\n`);
    if (!this.term.live) {
      // A cached step is reported once, when it is done.
      if (!e.cached) note(`${this.#label(this.#step)}: building`);
      return;
    }
    this.#spinner = ora({ stream: process.stderr, text: this.#text(), discardStdin: false }).start();
    this.#timer = setInterval(() => {
      if (this.#spinner) this.#spinner.text = this.#text();
    }, 100);
  }

  #text(): string {
    const s = this.#step;
    if (!s) return "";
    const { dim, cyan } = this.term.err;
    const width = Math.max(20, this.term.columns() - 6);
    const state = s.cached ? "cached" : "building";
    const head = `${this.#label(s)}  ${cyan(state)} ${dim(formatDuration(Date.now() - s.started))}`;
    const tail = this.#tail.map((l) => dim(`  │ ${l.length > width ? `${l.slice(0, width - 1)}…` : l}`));
    return [head, ...tail].join("\n");
  }

  #logText(text: string): void {
    this.#keep(text);
    const clean = (this.#partial + text).replace(/\u001b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r(?!\n)/g, "\n");
    const lines = clean.split("\n");
    this.#partial = lines.pop() ?? "";
    const complete = lines.map((l) => l.trimEnd()).filter((l) => l !== "");
    if (!this.term.live) {
      for (const l of complete) note(`  ${l}`);
      return;
    }
    this.#tail = [...this.#tail, ...complete].slice(-TAIL_LINES);
  }

  #done(cached: boolean, durationMs: number): void {
    const s = this.#step;
    if (!s) return;
    const result = cached ? "cached" : `done in ${formatDuration(durationMs)}`;
    if (!this.term.live && this.#partial.trim() !== "") note(`  ${this.#partial.trimEnd()}`);
    this.#partial = "";
    this.#stopTimer();
    if (this.#spinner) {
      this.#spinner.stopAndPersist({
        symbol: this.term.err.green("✔"),
        text: `${this.#label(s)}  ${this.term.err.dim(result)}`,
      });
      this.#spinner = undefined;
    } else {
      note(`${this.#label(s)}: ${result}`);
    }
    this.#step = undefined;
  }

  #keep(text: string): void {
    this.#log.push(text);
    this.#logBytes += text.length;
    while (this.#logBytes > KEPT_LOG_BYTES && this.#log.length > 1) {
      const dropped = this.#log.shift()!;
      this.#logBytes -= dropped.length;
      this.#cut += dropped.length;
    }
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The build failed: marks the running step failed and prints the build's whole log. */
  fail(): void {
    this.#stopTimer();
    const s = this.#step;
    if (this.#spinner && s)
      this.#spinner.stopAndPersist({ symbol: this.term.err.red("✖"), text: `${this.#label(s)}  failed` });
    else if (s) note(`${this.#label(s)}: failed`);
    this.#spinner = undefined;
    note(this.term.err.bold("build log:"));
    if (this.#cut > 0) note(`… (${this.#cut} earlier characters left out)`);
    const log = this.#log.join("");
    process.stderr.write(log.endsWith("\n") || log === "" ? log : `${log}\n`);
  }

  /** Stops any animation (the build ended). */
  stop(): void {
    this.#stopTimer();
    this.#spinner?.stop();
    this.#spinner = undefined;
  }
}
