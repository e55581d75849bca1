/**
 * Progress of a byte transfer (uploads, downloads, copies): a bar with bytes, rate and ETA
 * (cli-progress) on a terminal; elsewhere one line at the start and one at the end on stderr.
 */
import { SingleBar } from "cli-progress";
import { formatBytes, formatDuration } from "../format.js";
import { note, type Terminal } from "../terminal.js";

/** Transfers smaller than this show no bar (they end before one would be read). */
const BAR_THRESHOLD_BYTES = 1024 * 1024;

/** One transfer's progress. */
export class TransferProgress {
  #bar: SingleBar | undefined;
  #started = Date.now();
  #done = 0;
  #total: number | undefined;

  /**
   * @param label what moves (`uploading ./data`)
   * @param total bytes expected, when known
   */
  constructor(
    term: Terminal,
    private readonly label: string,
    total: number | undefined,
  ) {
    this.#total = total;
    const big = total === undefined || total >= BAR_THRESHOLD_BYTES;
    if (term.live && big) {
      this.#bar = new SingleBar({
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: true,
        barsize: 30,
        format: (_opts, params) => this.#line(params.value),
      });
      this.#bar.start(total ?? 0, 0);
    } else if (!term.live) {
      note(`${label}${total === undefined ? "" : ` (${formatBytes(total)})`}`);
    }
  }

  #rate(done: number): number {
    const secs = (Date.now() - this.#started) / 1000;
    return secs > 0 ? done / secs : 0;
  }

  #line(done: number): string {
    const rate = this.#rate(done);
    const total = this.#total;
    if (total === undefined || total === 0) {
      return `${this.label}  ${formatBytes(done)}  ${formatBytes(rate)}/s`;
    }
    const frac = Math.min(1, done / total);
    const filled = Math.round(frac * 30);
    const bar = `${"█".repeat(filled)}${"░".repeat(30 - filled)}`;
    const eta = rate > 0 ? formatDuration(((total - done) / rate) * 1000) : "?";
    return `${this.label}  ${bar} ${Math.floor(frac * 100)}%  ${formatBytes(done)}/${formatBytes(total)}  ${formatBytes(rate)}/s  ETA ${eta}`;
  }

  /** Sets the bytes moved so far (and the total, when it became known). */
  update(done: number, total?: number): void {
    this.#done = done;
    if (total !== undefined && total !== this.#total) {
      this.#total = total;
      this.#bar?.setTotal(total);
    }
    this.#bar?.update(done);
  }

  /** The transfer finished: a summary line on stderr. */
  finish(summary: string): void {
    this.#bar?.stop();
    const ms = Date.now() - this.#started;
    note(
      `${summary} (${formatBytes(this.#done)} in ${formatDuration(ms)}, ${formatBytes(this.#rate(this.#done))}/s)`,
    );
  }

  /** The transfer failed: stops the bar, prints nothing. */
  abort(): void {
    this.#bar?.stop();
  }
}
