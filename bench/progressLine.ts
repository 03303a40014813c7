/**
 * The one-line progress display on stderr: a bar, the phase, a count and its rate,
 * rewritten in place on a terminal. When stderr is not a terminal, only each phase's
 * closing line is printed, so logs stay readable.
 */
const WIDTH = 24;
const RENDER_EVERY_MS = 100;

export class ProgressLine {
  readonly #tty = process.stderr.isTTY === true;
  #label = '';
  #unit = '';
  #total = 0;
  #durationMs = 0;
  #startedAt = 0;
  #renderedAt = 0;

  /** Starts a phase measured by count (`total`) or by time (`durationMs`). */
  begin(label: string, unit: string, bound: { total?: number; durationMs?: number }): void {
    this.#label = label;
    this.#unit = unit;
    this.#total = bound.total ?? 0;
    this.#durationMs = bound.durationMs ?? 0;
    this.#startedAt = performance.now();
    this.#renderedAt = 0;
    this.update(0);
  }

  update(done: number): void {
    const now = performance.now();
    if (!this.#tty || now - this.#renderedAt < RENDER_EVERY_MS) return;
    this.#renderedAt = now;
    const elapsed = (now - this.#startedAt) / 1000;
    const fraction = Math.min(1, this.#total > 0 ? done / this.#total : this.#durationMs > 0 ? (elapsed * 1000) / this.#durationMs : 0);
    const filled = Math.round(fraction * WIDTH);
    const bar = '█'.repeat(filled) + '░'.repeat(WIDTH - filled);
    const rate = elapsed > 0 ? Math.round(done / elapsed).toLocaleString('en-US') : '0';
    process.stderr.write(
      `\r\x1b[K[${bar}] ${String(Math.round(fraction * 100)).padStart(3)}% ${this.#label} · ${done.toLocaleString('en-US')} ${this.#unit} · ${rate}/s · ${elapsed.toFixed(1)} s`,
    );
  }

  /** Ends the phase with a summary line that stays. */
  end(summary: string): void {
    const elapsed = ((performance.now() - this.#startedAt) / 1000).toFixed(1);
    process.stderr.write(`${this.#tty ? '\r\x1b[K' : ''}✓ ${this.#label}: ${summary} (${elapsed} s)\n`);
  }

  note(text: string): void {
    process.stderr.write(`${this.#tty ? '\r\x1b[K' : ''}${text}\n`);
  }
}
