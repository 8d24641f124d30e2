/**
 * A progress report for long copies: a redrawn bar with bytes, rate and ETA on a terminal, and plain lines
 * (one per tenth of the work) otherwise.
 *
 * @module
 */

/** Where and how a {@linkcode Progress} prints. */
export interface ProgressSink {
  /** Writes text as is (no newline added). */
  write(text: string): void;
  /** True when the sink is a terminal (draw a bar), false for pipes and files (print lines). */
  tty: boolean;
  /** Milliseconds clock; defaults to `performance.now`. */
  now?: () => number;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** `bytes` in binary units with one decimal, e.g. `1.5 GiB`. */
export function formatBytes(bytes: number): string {
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${UNITS[u]}`;
}

/** `seconds` as `m:ss` or `h:mm:ss`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** Tracks and prints the progress of one job of `total` bytes. */
export class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #sink: ProgressSink;
  readonly #now: () => number;
  readonly #start: number;
  #lastDraw = -Infinity;
  #lastTenth = -1;
  #done = 0;

  /** Starts a report titled `label` for `total` bytes. */
  constructor(label: string, total: number, sink: ProgressSink) {
    this.#label = label;
    this.#total = total;
    this.#sink = sink;
    this.#now = sink.now ?? (() => performance.now());
    this.#start = this.#now();
  }

  /** Records that `done` bytes of the total are done, printing when it is time to. */
  update(done: number): void {
    this.#done = done;
    const t = this.#now();
    if (this.#sink.tty) {
      if (t - this.#lastDraw < 100 && done < this.#total) return;
      this.#lastDraw = t;
      this.#sink.write(`\r${this.line(done, t)}\x1b[K`);
    } else {
      const tenth = this.#total === 0 ? 10 : Math.floor((done * 10) / this.#total);
      if (tenth <= this.#lastTenth) return;
      this.#lastTenth = tenth;
      this.#sink.write(`${this.line(done, t)}\n`);
    }
  }

  /** Prints the final state and ends the bar's line. */
  finish(): void {
    if (this.#sink.tty) {
      this.#sink.write(`\r${this.line(this.#done, this.#now())}\x1b[K\n`);
    } else if (this.#lastTenth < 10) {
      this.#lastTenth = 9;
      this.update(this.#total);
    }
  }

  /** The text of one report: label, bar (on a terminal), percentage, bytes, rate, ETA. */
  line(done: number, t: number): string {
    const frac = this.#total === 0 ? 1 : Math.min(1, done / this.#total);
    const secs = Math.max(1e-3, (t - this.#start) / 1000);
    const rate = done / secs;
    const eta = rate > 0 ? (this.#total - done) / rate : Infinity;
    const pct = `${Math.floor(frac * 100)}%`.padStart(4);
    const nums = `${formatBytes(done)} / ${formatBytes(this.#total)}, ${formatBytes(rate)}/s, ETA ${
      formatDuration(eta)
    }`;
    if (!this.#sink.tty) return `${this.#label}: ${pct.trim()} (${nums})`;
    const width = 30;
    const fill = Math.round(frac * width);
    return `${this.#label} [${"=".repeat(fill)}${" ".repeat(width - fill)}] ${pct} ${nums}`;
  }
}
