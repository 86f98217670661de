// Audit records as a table for people (`bouncer audit`, the demo's tour).
import { printable } from '../text/index.ts'
import type { AuditRecord } from './record.ts'

/** A table for people: one line per request, the reason last. Cells are printable (subjects are the caller's to choose). */
export function formatAuditTable(records: readonly AuditRecord[]): string {
  const rows = records.map((r) => [
    r.time.replace('T', ' ').replace('Z', ''),
    String(r.status),
    r.decision,
    `${r.method} ${r.path}`,
    r.route ?? '-',
    r.subject ?? '-',
    // A change made from the command line has no refusal to explain: what it did, and the reason given.
    r.code ? `${r.code}${r.limit ? ` (${r.limit})` : r.statement ? ` (${r.statement})` : ''}` : r.statement ?? (r.credential === 'os_user' ? r.detail ?? '' : ''),
  ].map(printable))
  const header = ['TIME (UTC)', 'STATUS', 'DECISION', 'REQUEST', 'ROUTE', 'SUBJECT', 'WHY']
  // A loop, not Math.max(...cells): spread as arguments, 130,000 rows (--limit) overflowed the stack.
  const widths = header.map((h) => h.length)
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] as number, cell.length)))
  for (let i = 0; i < widths.length; i++) widths[i] = Math.min(60, widths[i] as number)
  const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.slice(0, widths[i]).padEnd(widths[i] as number))).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}
