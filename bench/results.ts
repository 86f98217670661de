// What one benchmark case measured: run.ts writes it, targets.ts judges it.
import type { BenchCase } from './cases.ts'
import type { Measured } from './lib/load.ts'

export interface CaseResult {
  id: string
  title: string
  group: BenchCase['group']
  runs: Measured[]
  median: Measured
  /** Why the case did not run (nginx missing). */
  skipped?: string
}
