// GET /api/catalog (the console's Catalog page) is the running config — routes × roles, issuers and
// their keys, limits — with two figures from the audit log beside it: the last hour's refusals by
// limit and the unknown issuers seen. An audit log that could not be read (its PostgreSQL server down,
// the SQLite file damaged) made the whole answer 503 audit_unavailable, so the page was blank just when
// an operator most needed to see the issuers' state (found by the admin probe), as a broken approvals
// store did before (approvals_error). The catalog answers without the log's figures (null) and says
// why in audit_error.
import { randomBytes } from 'node:crypto'
import { rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { request } from 'undici'
import { afterEach, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { closedPort } from '../helpers/faults.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const TOKEN = 'adm3-catalog-admin-token-0123456789'
let gw: TestGateway | undefined

afterEach(async () => {
  await gw?.close()
  gw = undefined
})

function configWith(audit: Record<string, unknown>): Record<string, unknown> {
  return {
    admin: { token: TOKEN },
    audit,
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'open', methods: ['GET'], path: '/open', upstream: 'api', public: true, limits: ['per-ip'] }],
    limits: [{ name: 'per-ip', key: 'ip', rate: '10/s' }],
  }
}

async function catalog(): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`${gw?.adminUrl}/api/catalog`, { headers: { authorization: `Bearer ${TOKEN}` } })
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
}

function expectWithoutTheLog(answer: { status: number; body: Record<string, unknown> }, why: RegExp): void {
  expect(answer.status, JSON.stringify(answer.body)).toBe(200)
  expect(answer.body.routes).toMatchObject([{ id: 'open' }])
  expect(answer.body.limits).toMatchObject([{ name: 'per-ip', rate: '10/s', refused_1h: null, last_refused: null }])
  expect(answer.body.drift).toBeNull()
  expect(answer.body.audit_error).toMatch(why)
}

it('a SQLite log that is no database any more: the catalog answers, saying why the figures are missing', async () => {
  gw = await startTestGateway((dir) => configWith({ sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill') }))
  const log = join(gw.dir, 'audit.db')
  const res = await fetch(`${gw.url}/nowhere`)
  await res.arrayBuffer()
  await waitForAuditRecord(log, String(res.headers.get('x-request-id')))
  const readable = await catalog()
  expect(readable.status).toBe(200)
  expect(readable.body).toMatchObject({ drift: [], audit_error: null, limits: [{ name: 'per-ip', refused_1h: 0 }] })
  await rm(`${log}-wal`, { force: true })
  await rm(`${log}-shm`, { force: true })
  await writeFile(`${log}.new`, randomBytes(64 * 1024))
  await rename(`${log}.new`, log)
  expectWithoutTheLog(await catalog(), /^The audit log cannot be read: file is not a database/)
}, 30_000)

it('a PostgreSQL audit server that is down: the catalog answers, naming the server', async () => {
  const port = await closedPort()
  gw = await startTestGateway((dir) => configWith({ sinks: [{ type: 'postgres', url: `postgres://auditor:s3cret-password@127.0.0.1:${port}/audit`, schema: 'bouncer' }], spill_dir: join(dir, 'spill') }))
  const answer = await catalog()
  expectWithoutTheLog(answer, new RegExp(`^The audit log cannot be read: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}`))
  expect(JSON.stringify(answer.body)).not.toContain('s3cret-password')
}, 30_000)
