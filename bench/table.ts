/** How the bench prints its figures: one number format and one column layout for every table. */

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
