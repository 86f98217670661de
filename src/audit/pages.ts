// Reading the audit log a page at a time, newest first: the console's pages and export, and
// `bouncer audit --json`. Pages follow a cursor (the last record's time and id), not an offset, so
// records written meanwhile neither repeat a row on the next page nor push one off it.
import type { AuditRecord } from './record.ts'
import type { AuditQuery } from './search.ts'

/** Where pages are read from: a search of the log (the console's off its thread, the command line's at once). */
export type RecordReader = (query: AuditQuery) => Promise<AuditRecord[]>

export interface AuditCursor {
  /** The record's time, in ms. */
  time: number
  id: string
}

export interface RecordPage {
  rows: AuditRecord[]
  more: boolean
}

/** How many records a paged read takes at a time. */
export const PAGE = 1_000

/**
 * A page of records at `q.offset`, and whether more follow (one more than asked is read). The offset's
 * records are skipped by the database: read and dropped here, ?offset=100000 held 100,001 records
 * at once for a page of one (2.7 GB of RSS at the largest records, a probe).
 */
export async function pageAt(read: RecordReader, q: AuditQuery): Promise<RecordPage> {
  const rows = await read({ ...q, limit: q.limit + 1 })
  return { rows: rows.slice(0, q.limit), more: rows.length > q.limit }
}

/** The records after the cursor's, reading past those of its very millisecond that come before it. */
export async function pageAfter(read: RecordReader, q: AuditQuery, cursor: AuditCursor): Promise<RecordPage> {
  const untilMs = q.untilMs === undefined ? cursor.time : Math.min(q.untilMs, cursor.time)
  for (let extra = 16; ; extra *= 4) {
    const asked = q.limit + 1 + extra
    const rows = await read({ ...q, untilMs, limit: asked })
    const all = rows.length < asked // the log holds no more than these
    const at = rows.findIndex((r) => r.id === cursor.id)
    if (at >= 0) {
      const rest = rows.slice(at + 1)
      // Many records of the cursor's millisecond came first: read further before saying there is no more (a review).
      if (rest.length > q.limit || all) return { rows: rest.slice(0, q.limit), more: rest.length > q.limit }
      continue
    }
    // Not found once past its millisecond (retention deleted it): that millisecond's records are shown again, none skipped.
    const sameMs = rows.filter((r) => Date.parse(r.time) === cursor.time).length
    if (sameMs < rows.length || all) return { rows: rows.slice(0, q.limit), more: rows.length > q.limit }
  }
}

/**
 * Up to `q.limit` records, newest first, read a page at a time as the caller takes them: read whole
 * before a line was written, 100,000 of the largest records a client can cause took the gateway
 * 3.7 GB past its RSS (a probe; the Kubernetes manifests give it 512 MiB).
 */
export async function* pagedRecords(read: RecordReader, q: AuditQuery): AsyncGenerator<AuditRecord> {
  let left = q.limit
  let cursor: AuditCursor | null = null
  while (left > 0) {
    const asked = { ...q, limit: Math.min(PAGE, left) }
    const { rows, more }: RecordPage = cursor === null ? await pageAt(read, asked) : await pageAfter(read, asked, cursor)
    yield* rows
    left -= rows.length
    const last = rows.at(-1)
    if (!more || last === undefined) return
    cursor = { time: Date.parse(last.time), id: last.id }
  }
}
