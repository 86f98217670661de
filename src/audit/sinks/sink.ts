// What an audit sink does. Rows carry their chain and their position in it (`seq`) so that a replay
// after an outage, or a retry after a crash, writes each record once, into the chain it belongs to.
import type { Checkpoint, RetentionCut, UnsignedCut } from '../checkpoint.ts'
import { columnValues, type ColumnValue } from '../canonical-scan.ts'
import { FIELD_SPECS } from '../fields.ts'
import { recordOf, type AuditRecord, type LinkedLine } from '../record.ts'

export interface StoredRow {
  chain: string
  seq: number
  record: AuditRecord
}

/**
 * A row the audit worker has just chained: its canonical JSON and hash, the record object parsed
 * only if a sink or the spill file asks for it (the SQLite and PostgreSQL sinks take their columns
 * from the text: rowColumns). Measured on the worker: JSON.parse and the object per record were
 * ~1.5 µs of it, and most of its young garbage.
 */
export class LinkedRow implements StoredRow {
  readonly chain: string
  readonly seq: number
  readonly linked: LinkedLine
  #record: AuditRecord | undefined

  constructor(chain: string, seq: number, linked: LinkedLine) {
    this.chain = chain
    this.seq = seq
    this.linked = linked
  }

  get record(): AuditRecord {
    return (this.#record ??= recordOf(this.linked))
  }

  /** A spill file's line, as for any stored row. */
  toJSON(): { chain: string; seq: number; record: AuditRecord } {
    return { chain: this.chain, seq: this.seq, record: this.record }
  }
}

/** A row's column values in FIELD_SPECS order, roles as JSON text: from the canonical text when there is one. */
export function rowColumns(row: StoredRow): ColumnValue[] {
  if (row instanceof LinkedRow) {
    try {
      return columnValues(row.linked.canonical, row.linked.hash)
    } catch {
      // not canonical after all: read it the long way
    }
  }
  const values = row.record as unknown as Record<string, unknown>
  return FIELD_SPECS.map((field) => (field.kind === 'roles' ? JSON.stringify(values[field.name]) : ((values[field.name] ?? null) as ColumnValue)))
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

export { sinkName, type NamedSink } from '../../text/index.ts'

/** Signs a retention cut with the gateway's checkpoint key (the audit worker holds it; a sink does not). */
export type CutSigner = (cut: UnsignedCut) => RetentionCut

export interface AuditSink {
  /** For logs, metrics and spill file names, e.g. `sqlite:./data/audit.db`. */
  readonly name: string
  /**
   * How long a write may go unanswered before the runner spills its rows and counts the sink down
   * (a network sink whose server stalls); unset for a sink whose writes hold the thread anyway.
   */
  readonly writeTimeoutMs?: number
  /** Connects and creates or migrates the schema. */
  open(): Promise<void>
  /** The last record of a chain (checked), else its retention checkpoint; null when there is neither. */
  head(chain: string): Promise<SinkHead | null>
  write(rows: readonly StoredRow[]): Promise<void>
  /**
   * Appends one record to a chain other processes may write too (the command line's, chain.ts):
   * the chain's head is read and the record written under the sink's own lock, so two writers at
   * once link one after the other instead of both after the same head. Only sinks that keep
   * records (SQLite, PostgreSQL) have it.
   */
  append?(chain: string, build: (head: SinkHead | null) => Omit<StoredRow, 'chain'>, sign?: (row: StoredRow) => Checkpoint): Promise<StoredRow>
  /** Keeps a chain's signed checkpoint (the latest per chain) apart from the records. */
  checkpoint(checkpoint: Checkpoint): Promise<void>
  /** A cheap check that the sink answers again (after an outage). */
  ping(): Promise<void>
  /** Retention: deletes records older than `timeMs`, keeping where each chain now starts, signed by `sign`. */
  deleteBefore(timeMs: number, sign: CutSigner): Promise<number>
  close(): Promise<void>
}
