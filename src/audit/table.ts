// Audit records as a table for people (`bouncer audit`, the demo's tour).
import { printable } from '../text/index.ts'
import type { AuditRecord } from './record.ts'

const HEADER = ['TIME (UTC)', 'STATUS', 'DECISION', 'REQUEST', 'ROUTE', 'SUBJECT', 'WHY']

/** A cell is cut here, so one long path or subject cannot push the rest of the table off the screen. */
const MAX_WIDTH = 60

/** A record's cells: one line per request, the reason last. Printable (subjects are the caller's to choose). */
function cellsOf(r: AuditRecord): string[] {
  return [
    r.time.replace('T', ' ').replace('Z', ''),
    String(r.status),
    r.decision,
    `${r.method} ${r.path}`,
    r.route ?? '-',
    r.subject ?? '-',
    // A change made from the command line has no refusal to explain: what it did, and the reason given.
    r.code ? `${r.code}${r.limit ? ` (${r.limit})` : r.statement ? ` (${r.statement})` : ''}` : r.statement ?? (r.credential === 'os_user' ? r.detail ?? '' : ''),
  ].map(printable)
}

/** Each column's width: its widest cell among these rows (at most MAX_WIDTH), or its header's. */
function widthsOf(rows: readonly string[][]): number[] {
  // A loop, not Math.max(...cells): spread as arguments, 130,000 rows (--limit) overflowed the stack.
  const widths = HEADER.map((h) => h.length)
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] as number, cell.length)))
  return widths.map((w) => Math.min(MAX_WIDTH, w))
}

/** A line of cells in these widths: a cell wider than its column (a later page's) pushes the rest of its own line right, cut at MAX_WIDTH as always. */
function lineOf(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.slice(0, MAX_WIDTH).padEnd(widths[i] as number))).join('  ').trimEnd()
}

/** The table of these records, its columns as wide as their widest cells. */
export function formatAuditTable(records: readonly AuditRecord[]): string {
  const rows = records.map(cellsOf)
  const widths = widthsOf(rows)
  return [lineOf(HEADER, widths), ...rows.map((row) => lineOf(row, widths))].join('\n')
}

/**
 * The table a line at a time, as its records are read (a page at a time: audit/pages.ts). The
 * columns are as wide as the widest cells of the first `sample` records (the first page): the
 * table needed every record in memory to size them, and `bouncer audit --limit 1000000` held them
 * all before its first line. A later record's wider cell moves the rest of its own line only. No
 * line at all for no records.
 */
export async function* auditTableLines(records: AsyncIterable<AuditRecord>, sample: number): AsyncGenerator<string> {
  const first: string[][] = []
  let widths: number[] | null = null
  for await (const record of records) {
    if (widths !== null) {
      yield lineOf(cellsOf(record), widths)
      continue
    }
    first.push(cellsOf(record))
    // Written before the next record is asked for: its page is not read until these are out.
    if (first.length === sample) widths = yield* sized(first)
  }
  if (widths === null && first.length > 0) yield* sized(first)
}

/** The header and these rows, in the widths they make; the widths. */
function* sized(rows: string[][]): Generator<string, number[]> {
  const widths = widthsOf(rows)
  yield lineOf(HEADER, widths)
  for (const row of rows.splice(0)) yield lineOf(row, widths)
  return widths
}
