// A synthetic audit log for the console's benchmark: N chained records over the last `spanMs`,
// written through the SQLite sink (so its indexes are the gateway's), with a realistic mix of
// routes, principals, denials and errors.
import { randomUUID } from 'node:crypto'
import { chain, GENESIS_HASH, type RecordInput } from '../../src/audit/record.ts'
import type { StoredRow } from '../../src/audit/sinks/sink.ts'
import { createSqliteSink } from '../../src/audit/sinks/sqlite.ts'

const ROUTES = ['sales.daily', 'sales.monthly', 'sales.customers', 'orders.list', 'orders.get', 'reports.refresh', 'health', null]
const PRINCIPALS = Array.from({ length: 40 }, (_, i) => (i < 10 ? `svc-looker-${i}` : i < 30 ? `user-${i}@example.com` : `agent-${i}`))
const DENIALS = [
  { status: 403, code: 'policy_denied', statement: 'NoCustomerPII' },
  { status: 403, code: 'no_role', statement: null },
  { status: 401, code: 'token_expired', statement: null },
  { status: 429, code: 'rate_limited', statement: null },
  { status: 404, code: 'route_not_found', statement: null },
]
const ERRORS = [{ status: 502, code: 'upstream_unavailable' }, { status: 504, code: 'upstream_timeout' }]

/** A small deterministic generator, so two runs write the same log. */
function random(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

export async function writeAuditLog(path: string, options: { records: number; spanMs: number; now?: number }): Promise<void> {
  const sink = createSqliteSink(path, { durable: false })
  await sink.open()
  const rnd = random(42)
  const now = options.now ?? Date.now()
  const start = now - options.spanMs
  const step = options.spanMs / options.records
  let prev = GENESIS_HASH
  let batch: StoredRow[] = []
  for (let i = 0; i < options.records; i++) {
    const r = rnd()
    const route = ROUTES[Math.floor(rnd() * ROUTES.length)] ?? null
    const subject = PRINCIPALS[Math.floor(rnd() ** 2 * PRINCIPALS.length)] as string
    const upstreamMs = 2 + rnd() * 20 + (rnd() < 0.01 ? 200 : 0)
    let input: RecordInput = {
      id: randomUUID(), time: new Date(Math.floor(start + i * step)).toISOString(), request_id: randomUUID(), method: 'GET',
      path: `/${route ?? 'nowhere'}/${i % 7}`, route, status: 200, decision: 'allow', statement: 'AllowReads', issuer: 'https://sso.example.com/',
      subject, client_id: 'looker-prod', roles: ['readers'], source_ip: '10.1.2.3', user_agent: 'bench', upstream: 'sales-api', upstream_status: 200,
      duration_ms: upstreamMs + 0.3 + rnd(), upstream_ms: upstreamMs, bytes_in: 0, bytes_out: 2048, attempts: 1, instance: 'bench:1',
    }
    if (r < 0.12) {
      const d = DENIALS[Math.floor(rnd() * DENIALS.length)] as (typeof DENIALS)[number]
      input = { ...input, status: d.status, decision: 'deny', code: d.code, statement: d.statement, upstream: null, upstream_status: null, upstream_ms: null, attempts: null, duration_ms: 0.2 + rnd() }
    } else if (r < 0.14) {
      const e = ERRORS[Math.floor(rnd() * ERRORS.length)] as (typeof ERRORS)[number]
      input = { ...input, status: e.status, decision: 'error', code: e.code, upstream_status: null }
    }
    const record = chain(input, prev)
    prev = record.hash
    batch.push({ chain: 'bench', seq: i + 1, record })
    if (batch.length === 5_000) {
      await sink.write(batch)
      batch = []
    }
  }
  if (batch.length > 0) await sink.write(batch)
  await sink.close()
}
