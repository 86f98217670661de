// The audit side thread's program (side-thread.ts): the console's SQLite reads, and the admin API's
// change records, run on a thread of their own: node:sqlite blocks the thread it runs on, a day's
// aggregates take a second on a million records, and a write waits for the audit worker's batch to
// commit.
import { parentPort } from 'node:worker_threads'
import { quietSqliteWarning } from '../collections/index.ts'
import { auditCounts, auditDenials, auditOverview } from './aggregate.ts'
import { appendChange } from './change-log.ts'
import type { SideJob, SideReply } from './side-thread.ts'
import { searchAudit } from './search.ts'
import { NoAuditLog } from './sinks/sqlite.ts'
import { verifyAudit } from './verify.ts'

quietSqliteWarning() // first: Node 22's warning about node:sqlite, which these modules load

async function run(job: SideJob): Promise<unknown> {
  switch (job.kind) {
    case 'overview':
      return auditOverview(job.source, job.query)
    case 'denials':
      return auditDenials(job.source, job.query, job.limit)
    case 'counts':
      return auditCounts(job.source, job.sinceMs)
    case 'search':
      return searchAudit(job.source, job.query)
    case 'verify':
      // Bounded as the console's other reads of a PostgreSQL log are (LogReading.bounded).
      return verifyAudit(job.source, job.anchors, { bounded: true })
    case 'change':
      return appendChange(job.config, job.chainId, job.input, job.signer)
  }
}

parentPort?.on('message', (message: { id: number; job: SideJob }) => {
  run(message.job).then(
    (result) => parentPort?.postMessage({ id: message.id, ok: true, result } satisfies SideReply),
    (err: unknown) => {
      const { code, errcode } = (err ?? {}) as { code?: unknown; errcode?: unknown }
      parentPort?.postMessage({
        id: message.id, ok: false, noLog: err instanceof NoAuditLog, message: (err as Error).message ?? String(err),
        code: typeof code === 'string' ? code : undefined, errcode: typeof errcode === 'number' ? errcode : undefined,
      } satisfies SideReply)
    },
  )
})
