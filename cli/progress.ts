/**
 * A progress bar on stderr, never on stdout (stdout carries the table or the JSON). On a terminal: drawn once the
 * work has taken more than a second, redrawn at most ten times a second, erased at the end. Elsewhere (a log file,
 * a CI job): a plain line every 30 s, so a long run is not silent for its whole length.
 */

export interface ProgressStream {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

const WIDTH = 30;
const SHOW_AFTER_MS = 1000;
const REDRAW_MS = 100;
const LINE_EVERY_MS = 30_000;

export class ProgressBar {
  readonly #stream: ProgressStream;
  readonly #now: () => number;
  readonly #started: number;
  #lastDraw = 0;
  #drawn = false;

  constructor(stream: ProgressStream, now: () => number = () => performance.now()) {
    this.#stream = stream;
    this.#now = now;
    this.#started = now();
  }

  /** Reports `done` of `total` for a labelled phase. */
  update(label: string, done: number, total: number): void {
    const now = this.#now();
    if (!this.#stream.isTTY) {
      if (now - Math.max(this.#started, this.#lastDraw) < LINE_EVERY_MS || done >= total) return;
      this.#lastDraw = now;
      const share = total > 0 ? Math.min(1, done / total) : 1;
      this.#stream.write(`${label}: ${done} of ${total} (${Math.floor(share * 100)} %)\n`);
      return;
    }
    if (now - this.#started < SHOW_AFTER_MS || (now - this.#lastDraw < REDRAW_MS && done < total)) return;
    this.#lastDraw = now;
    const share = total > 0 ? Math.min(1, done / total) : 1;
    const filled = Math.round(share * WIDTH);
    const bar = `${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}`;
    this.#stream.write(`\r${label.padEnd(12)} [${bar}] ${String(Math.round(share * 100)).padStart(3)}%`);
    this.#drawn = true;
  }

  /** Erases the bar (the line is left empty for whatever comes next). */
  done(): void {
    if (!this.#drawn) return;
    this.#stream.write(`\r${' '.repeat(WIDTH + 20)}\r`);
    this.#drawn = false;
  }
}
