// What an audit sink does. Rows carry their position in the chain (`seq`) so that a replay after an
// outage, or a retry after a crash, writes each record once.
import type { AuditRecord } from '../record.ts'

export interface StoredRow {
  seq: number
  record: AuditRecord
}

export interface ChainHead {
  seq: number
  hash: string
}

export interface AuditSink {
  /** For logs, metrics and spill file names, e.g. `sqlite:./data/audit.db`. */
  readonly name: string
  /** Connects and creates or migrates the schema; answers the last record of this chain, if any. */
  open(): Promise<ChainHead | null>
  write(rows: readonly StoredRow[]): Promise<void>
  /** A cheap check that the sink answers again (after an outage). */
  ping(): Promise<void>
  /** Retention: deletes records older than `timeMs`, keeping a checkpoint of the chain. */
  deleteBefore(timeMs: number): Promise<number>
  close(): Promise<void>
}
