/**
 * How the bench prints: one number format and one column layout for every table, and the
 * one-line progress display on stderr (a bar, the phase, a count and its rate, rewritten
 * in place on a terminal; when stderr is not a terminal, only each phase's closing line).
 */

/** `value` with exactly `digits` decimals (en-US grouping); `none` when there is no figure. */
export function show(value: number | null | undefined, digits = 0, none = 'n/a'): string {
  if (value === null || value === undefined || Number.isNaN(value)) return none;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** `value` with at most `digits` decimals, for running text. */
export const brief = (value: number, digits = 0) => value.toLocaleString('en-US', { maximumFractionDigits: digits });

/**
 * Lines up cells in columns — left-aligned where `left(i)`, else right-aligned — with a rule
 * under the header; a row of one cell is a heading, printed as it is.
 */
export function columns(header: string[], body: string[][], left: (i: number) => boolean = (i) => i === 0): string {
  const widths = header.map((_, i) =>
    Math.max(...[header, ...body.filter((cells) => cells.length > 1)].map((cells) => (cells[i] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells.length === 1
      ? (cells[0] ?? '')
      : cells
          .map((cell, i) => (left(i) ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
          .join('  ')
          .trimEnd();
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** What a part of the bench adds to the run: its fields of results.json, its printed tables, notes and failures. */
export interface PartOutcome {
  json: Record<string, unknown>;
  tables: string[];
  notes: string[];
  failures: string[];
}

const WIDTH = 24;
const RENDER_EVERY_MS = 100;

export class ProgressLine {
  readonly #tty = process.stderr.isTTY === true;
  #phase = { label: '', unit: '', total: 0, durationMs: 0, startedAt: 0 };
  #renderedAt = 0;

  /** Starts a phase measured by count (`total`) or by time (`durationMs`). */
  begin(label: string, unit: string, { total = 0, durationMs = 0 }: { total?: number; durationMs?: number }): void {
    this.#phase = { label, unit, total, durationMs, startedAt: performance.now() };
    this.#renderedAt = 0;
    this.update(0);
  }

  update(done: number): void {
    const now = performance.now();
    if (!this.#tty || now - this.#renderedAt < RENDER_EVERY_MS) return;
    this.#renderedAt = now;
    const { label, unit, total, durationMs, startedAt } = this.#phase;
    const elapsed = (now - startedAt) / 1000;
    const fraction = Math.min(1, total > 0 ? done / total : durationMs > 0 ? (elapsed * 1000) / durationMs : 0);
    const bar = '█'.repeat(Math.round(fraction * WIDTH)).padEnd(WIDTH, '░');
    const rate = elapsed > 0 ? brief(done / elapsed) : '0';
    process.stderr.write(
      `\r\x1b[K[${bar}] ${String(Math.round(fraction * 100)).padStart(3)}% ${label} · ${brief(done)} ${unit} · ${rate}/s · ${elapsed.toFixed(1)} s`,
    );
  }

  /** Ends the phase with a summary line that stays. */
  end(summary: string): void {
    this.note(`✓ ${this.#phase.label}: ${summary} (${((performance.now() - this.#phase.startedAt) / 1000).toFixed(1)} s)`);
  }

  note(text: string): void {
    process.stderr.write(`${this.#tty ? '\r\x1b[K' : ''}${text}\n`);
  }
}
