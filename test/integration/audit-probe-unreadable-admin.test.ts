// Found by the audit probe: the admin API's reads of an audit log that cannot be read for the log's
// own reason — a PostgreSQL server that is down, a SQLite log replaced by a file that is none — were
// 500 internal_error "The gateway failed to handle this request." (GET /api/audit, the console's
// pages, figures, export and Verify), logged as the gateway's error: the console showed an internal
// error, and said nothing of the database. They are 503 audit_unavailable, saying why.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { closedPort } from '../helpers/faults.ts'
import { startTestGateway } from '../helpers/gateway.ts'

const TOKEN = 'unreadable-admin-token-0123456789'
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-audit-unreadable-'))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

// (GET /api/catalog answers without the log's figures instead: adm3-catalog-audit-unreadable.test.ts.)
const READS: Array<['GET' | 'POST', string]> = [
  ['GET', '/api/audit?limit=5'], ['GET', '/api/audit/page'], ['GET', '/api/overview?since=1h'], ['GET', '/api/denials'],
  ['GET', '/api/audit/export?format=csv'], ['GET', '/api/audit/trace?id=x&time=2026-01-01T00:00:00Z'], ['POST', '/api/audit/verify'],
]

async function answers(adminUrl: string): Promise<Array<{ read: string; status: number; code: string; detail: string }>> {
  const out = []
  for (const [method, path] of READS) {
    const res = await request(`${adminUrl}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } })
    expect(res.headers['content-type'], `${method} ${path}`).toBe('application/problem+json')
    const body = (await res.body.json()) as { code: string; detail: string }
    out.push({ read: `${method} ${path}`, status: res.statusCode, code: body.code, detail: body.detail })
  }
  return out
}

it('a PostgreSQL server that is down: 503 audit_unavailable naming the server', async () => {
  const port = await closedPort()
  const gw = await startTestGateway({
    admin: { token: TOKEN },
    audit: { sinks: [{ type: 'postgres', url: `postgres://auditor:s3cret-password@127.0.0.1:${port}/audit`, schema: 'bouncer' }], spill_dir: join(dir, 'spill-pg') },
    routes: [],
  })
  try {
    for (const answer of await answers(gw.adminUrl)) {
      expect(answer, answer.read).toMatchObject({ status: 503, code: 'audit_unavailable' })
      expect(answer.detail, answer.read).toMatch(new RegExp(`^The audit log cannot be read: connect ECONNREFUSED 127\\.0\\.0\\.1:${port} \\(PostgreSQL at 127\\.0\\.0\\.1:${port}: not reachable, or it went away\\)\\.$`))
    }
    expect(gw.logs.join('')).not.toContain('admin request failed')
  } finally {
    await gw.close()
  }
}, 60_000)

it('a SQLite log replaced by a file that is no database: 503 audit_unavailable saying so', async () => {
  const log = join(dir, 'audit.db')
  const gw = await startTestGateway({ admin: { token: TOKEN }, audit: { sinks: [{ type: 'sqlite', path: log }], spill_dir: join(dir, 'spill-sqlite') }, routes: [] })
  try {
    const res = await fetch(`${gw.url}/nowhere`)
    await res.arrayBuffer()
    await waitForAuditRecord(log, String(res.headers.get('x-request-id')))
    // A wrong file restored over the log (its -wal and -shm go with it).
    await rm(`${log}-wal`, { force: true })
    await rm(`${log}-shm`, { force: true })
    await writeFile(`${log}.new`, randomBytes(64 * 1024))
    await rename(`${log}.new`, log)
    for (const answer of await answers(gw.adminUrl)) {
      expect(answer, answer.read).toEqual({ read: answer.read, status: 503, code: 'audit_unavailable', detail: 'The audit log cannot be read: file is not a database (damaged, or not an audit log?).' })
    }
  } finally {
    await gw.close()
  }
}, 60_000)
