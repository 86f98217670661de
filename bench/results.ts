// What one benchmark case measured: run.ts writes it, targets.ts judges it.
import type { BenchCase } from './cases.ts'
import type { Measured } from './lib/load.ts'

export interface CaseResult {
  id: string
  title: string
  group: BenchCase['group']
  runs: Measured[]
  median: Measured
  /** An audited case: records in its SQLite log after it stopped, against the responses wrk counted (warm-up included). */
  audit?: { records: number; responses: number }
  /** Resident memory of the measured process and its children (nginx's worker) after the last run, in MB. */
  rssMb?: number
  /** Why the case did not run (nginx missing). */
  skipped?: string
}
