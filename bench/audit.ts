// Audit costs (in process): what the request thread pays per record (one JSON line), and how many
// records per second the audit worker's path sustains into SQLite (chain hashing + batched inserts).
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { RequestContext } from '../src/request/index.ts'
import { GENESIS_HASH, link, recordLine } from '../src/audit/record.ts'
import { LinkedRow, type StoredRow } from '../src/audit/sinks/sink.ts'
import { createSqliteSink } from '../src/audit/sinks/sqlite.ts'

const INSTANCE = 'bench-host:4242'

export function finishedRequest(i: number): RequestContext {
  return {
    startedAt: Date.now(),
    startMono: performance.now() - 3,
    id: `req-${i}`,
    trace: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', parentSpanId: null, flags: '01', tracestate: null },
    method: 'GET',
    path: `/sales/daily/eu`,
    route: { id: 'sales.daily' },
    status: 200,
    decision: 'allow',
    code: null,
    error: null,
    statement: 'AllowSalesReads',
    identity: { issuerName: 'corp', iss: 'https://sso.example.com/', sub: `svc-looker-${i % 50}`, clientId: 'looker-prod', claims: {}, expiresAt: 0 },
    roles: ['looker-reports'],
    clientIp: '10.1.2.3',
    headers: { userAgent: 'Looker/24.0' },
    upstream: 'sales-api',
    upstreamStatus: 200,
    bytesIn: 0,
    bytesOut: 1024,
    limit: null,
  } as unknown as RequestContext
}

/** Microseconds the request thread spends turning one finished request into its audit line. */
export function benchRecordLine(quick: boolean): { microsPerRecord: number } {
  const contexts = Array.from({ length: 1_000 }, (_, i) => finishedRequest(i))
  const n = quick ? 50_000 : 500_000
  for (let i = 0; i < 50_000; i++) recordLine(contexts[i % 1_000] as RequestContext, INSTANCE)
  const started = performance.now()
  for (let i = 0; i < n; i++) recordLine(contexts[i % 1_000] as RequestContext, INSTANCE)
  return { microsPerRecord: ((performance.now() - started) * 1000) / n }
}

/** Records per second through the worker's path: chain (SHA-256), parse, and SQLite in batches of 2,000. */
export async function benchSqliteSink(quick: boolean): Promise<{ recordsPerSec: number; batch: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-audit-bench-'))
  const sink = createSqliteSink(join(dir, 'audit.db'), { durable: false })
  const chain = randomUUID()
  await sink.open()
  const batch = 2_000
  const total = quick ? 20_000 : 200_000
  const lines = Array.from({ length: batch }, (_, i) => recordLine(finishedRequest(i), INSTANCE))
  let head = { seq: 0, hash: GENESIS_HASH }
  const started = performance.now()
  for (let written = 0; written < total; written += batch) {
    const rows: StoredRow[] = []
    for (const line of lines) {
      const linked = link(line, head.hash) // as the worker does (worker.ts onBatch)
      head = { seq: head.seq + 1, hash: linked.hash }
      rows.push(new LinkedRow(chain, head.seq, linked))
    }
    await sink.write(rows)
  }
  const recordsPerSec = total / ((performance.now() - started) / 1000)
  await sink.close()
  rmSync(dir, { recursive: true, force: true })
  return { recordsPerSec, batch }
}
