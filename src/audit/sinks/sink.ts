// What an audit sink does. Rows carry their chain and their position in it (`seq`) so that a replay
// after an outage, or a retry after a crash, writes each record once, into the chain it belongs to.
import type { Checkpoint } from '../checkpoint.ts'
import type { AuditRecord } from '../record.ts'

export interface StoredRow {
  chain: string
  seq: number
  record: AuditRecord
}

export interface ChainHead {
  seq: number
  hash: string
  /** The head record's id (null when only a retention checkpoint is left of the chain). */
  id: string | null
}

/** The end of a chain as a sink holds it, and why it cannot be continued, if it cannot. */
export interface SinkHead extends ChainHead {
  problem: string | null
}

export interface AuditSink {
  /** For logs, metrics and spill file names, e.g. `sqlite:./data/audit.db`. */
  readonly name: string
  /** Connects and creates or migrates the schema. */
  open(): Promise<void>
  /** The last record of a chain (checked), else its retention checkpoint; null when there is neither. */
  head(chain: string): Promise<SinkHead | null>
  write(rows: readonly StoredRow[]): Promise<void>
  /** Keeps a chain's signed checkpoint (the latest per chain) apart from the records. */
  checkpoint(checkpoint: Checkpoint): Promise<void>
  /** A cheap check that the sink answers again (after an outage). */
  ping(): Promise<void>
  /** Retention: deletes records older than `timeMs`, keeping a checkpoint of the chain. */
  deleteBefore(timeMs: number): Promise<number>
  close(): Promise<void>
}
