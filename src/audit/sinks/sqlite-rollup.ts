// A batch's per-minute rollups counted from the values the sink already scanned for its rows, then
// one upsert per distinct key: the same counts as `rollupInserts` (sqlite.ts) reading the batch's
// rows back in SQL, which cost ~1–1.5 µs a record of the worker's ~10 (issue 15; bench/README.md,
// "Profiling"). Used only when every row of the batch was inserted: a replayed record (INSERT OR
// IGNORE) must not be counted twice, and which rows were ignored only SQL can tell.
import type { DatabaseSync, StatementSync } from 'node:sqlite'
import type { ColumnValue } from '../canonical-scan.ts'
import { FIELD_SPECS } from '../fields.ts'

export const ROLLUP_BINS_PER_OCTAVE = 8

const column = (name: string) => FIELD_SPECS.findIndex((field) => field.name === name)
const [DECISION, CODE, STATEMENT, ROUTE, SUBJECT, DURATION, UPSTREAM_MS] =
  ['decision', 'code', 'statement', 'route', 'subject', 'duration_ms', 'upstream_ms'].map(column) as [number, number, number, number, number, number, number]

/**
 * SQLite's `CAST(round(log2(max(ms, 0.01)) * 8) AS INTEGER)` (latencyBinSql in sqlite.ts): its round() adds
 * ±0.5 and truncates (half away from zero), which Math.round does not do for negative halves. V8's
 * log2 and the C library's may differ in the last bit, which could move a value within ~1e-15 of a
 * bin's edge into the next bin (each ±4.5% wide): immaterial to the console's percentiles.
 */
export function latencyBin(ms: number): number {
  const x = Math.log2(Math.max(ms, 0.01)) * ROLLUP_BINS_PER_OCTAVE
  return x >= 0 ? Math.trunc(x + 0.5) : -Math.trunc(-x + 0.5)
}

interface Counted<K extends unknown[]> {
  key: K
  n: number
}

type Outcome = [minute: number, decision: string, code: string, statement: string, route: string]
type Principal = [minute: number, subject: string, decision: string]
type Latency = [minute: number, kind: number, bin: number]

const UPSERT = 'ON CONFLICT DO UPDATE SET n = n + excluded.n'

/** The rollup tables' upserts, prepared once per open database. */
export interface RollupStatements {
  outcomes: StatementSync
  principals: StatementSync
  latency: StatementSync
}

export function prepareRollupUpserts(db: DatabaseSync): RollupStatements {
  return {
    outcomes: db.prepare(`INSERT INTO audit_rollup_outcomes VALUES (?, ?, ?, ?, ?, ?) ${UPSERT}`),
    principals: db.prepare(`INSERT INTO audit_rollup_principals VALUES (?, ?, ?, ?) ${UPSERT}`),
    latency: db.prepare(`INSERT INTO audit_rollup_latency VALUES (?, ?, ?, ?) ${UPSERT}`),
  }
}

/** Counts by a key of several parts, a Map per part: no key string to build and hash per record. */
class Counter<K extends unknown[]> {
  readonly #root = new Map<unknown, unknown>()
  readonly #counted: Array<Counted<K>> = []

  get counted(): ReadonlyArray<Counted<K>> {
    return this.#counted
  }

  clear(): void {
    this.#root.clear()
    this.#counted.length = 0
  }

  count(key: K): void {
    let level = this.#root
    const last = key.length - 1
    for (let i = 0; i < last; i++) {
      let next = level.get(key[i]) as Map<unknown, unknown> | undefined
      if (next === undefined) level.set(key[i], (next = new Map()))
      level = next
    }
    const counted = level.get(key[last]) as Counted<K> | undefined
    if (counted !== undefined) counted.n++
    else {
      const fresh = { key: [...key] as K, n: 1 }
      level.set(key[last], fresh)
      this.#counted.push(fresh)
    }
  }
}

/** One batch's counts; '' stands for null in keys, as in the tables. */
export class BatchRollup {
  readonly #outcomes = new Counter<Outcome>()
  readonly #principals = new Counter<Principal>()
  readonly #latency = new Counter<Latency>()
  // Reused for each record's lookups (copied only for a key seen first).
  readonly #outcome: Outcome = [0, '', '', '', '']
  readonly #principal: Principal = [0, '', '']
  readonly #bin: Latency = [0, 0, 0]

  clear(): void {
    this.#outcomes.clear()
    this.#principals.clear()
    this.#latency.clear()
  }

  /** A row's columns (FIELD_SPECS order) and its time_ms. */
  add(columns: readonly ColumnValue[], timeMs: number): void {
    const minute = Math.floor(timeMs / 60_000)
    const decision = columns[DECISION] as string
    const outcome = this.#outcome
    outcome[0] = minute
    outcome[1] = decision
    outcome[2] = (columns[CODE] ?? '') as string
    outcome[3] = (columns[STATEMENT] ?? '') as string
    outcome[4] = (columns[ROUTE] ?? '') as string
    this.#outcomes.count(outcome)
    const principal = this.#principal
    principal[0] = minute
    principal[1] = (columns[SUBJECT] ?? '') as string
    principal[2] = decision
    this.#principals.count(principal)
    const upstreamMs = columns[UPSTREAM_MS]
    if (upstreamMs !== null && upstreamMs !== undefined) {
      const bin = this.#bin
      bin[0] = minute
      bin[1] = 0
      bin[2] = latencyBin(columns[DURATION] as number)
      this.#latency.count(bin)
      bin[1] = 1
      bin[2] = latencyBin(upstreamMs as number)
      this.#latency.count(bin)
    }
  }

/** Adds the batch's counts to the tables (in the batch's transaction). */
  write(statements: RollupStatements): void {
    for (const { key, n } of this.#outcomes.counted) statements.outcomes.run(...key, n)
    for (const { key, n } of this.#principals.counted) statements.principals.run(...key, n)
    for (const { key, n } of this.#latency.counted) statements.latency.run(...key, n)
  }
}
