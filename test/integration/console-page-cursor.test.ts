// Found by a review of the console's cursor paging: when many records share the cursor's
// millisecond (~20 a ms at 20k req/s), a page could come back short with no "older" link though
// older records existed: the read stopped at what it had asked for.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { chain, GENESIS_HASH, type AuditRecord, type RecordInput } from '../../src/audit/record.ts'
import type { StoredRow } from '../../src/audit/sinks/sink.ts'
import { createSqliteSink } from '../../src/audit/sinks/sqlite.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const TOKEN = 'console-page-cursor-admin-token-0123'
const NOW = Date.now() - 60_000
let dir: string
let gateway: TestGateway

/** 80 records a second apart, then 40 in one millisecond (the newest). */
function rows(): StoredRow[] {
  const out: StoredRow[] = []
  let prev = GENESIS_HASH
  for (let i = 0; i < 120; i++) {
    const time = i < 80 ? NOW - (80 - i) * 1_000 : NOW
    const input: RecordInput = {
      id: `r-${String(i).padStart(3, '0')}`, time: new Date(time).toISOString(), request_id: `q-${i}`, method: 'GET', path: '/x', route: 'x',
      status: 200, decision: 'allow', statement: 'S', issuer: null, subject: null, client_id: null, roles: [], source_ip: '10.0.0.1',
      upstream: 'api', upstream_status: 200, duration_ms: 1, bytes_in: 0, bytes_out: 2,
    }
    const record = chain(input, prev)
    prev = record.hash
    out.push({ chain: 'test', seq: i + 1, record })
  }
  return out
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-page-cursor-'))
  const path = join(dir, 'audit.db')
  const sink = createSqliteSink(path, { durable: false })
  await sink.open()
  await sink.write(rows())
  await sink.close()
  gateway = await startTestGateway({
    admin: { listen: '127.0.0.1:0', token: TOKEN },
    audit: { sinks: [{ type: 'sqlite', path }], spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'x', path: '/x', upstream: 'api', public: true }],
  })
}, 30_000)

afterAll(async () => {
  await gateway?.close()
  await rm(dir, { recursive: true, force: true })
})

async function page(params: string): Promise<{ records: AuditRecord[]; more: boolean }> {
  const res = await request(`${gateway.adminUrl}/api/audit/page?limit=10&since=1h&${params}`, { headers: { authorization: `Bearer ${TOKEN}` } })
  expect(res.statusCode).toBe(200)
  return (await res.body.json()) as { records: AuditRecord[]; more: boolean }
}

it('pages by cursor through 40 records of one millisecond and on to the older ones, every page full', async () => {
  const seen: string[] = []
  let params = ''
  for (let n = 0; n < 12; n++) {
    const { records, more } = await page(params)
    expect(records, `page ${n + 1}`).toHaveLength(10)
    seen.push(...records.map((r) => r.id))
    expect(more, `page ${n + 1}`).toBe(n < 11)
    const last = records.at(-1) as AuditRecord
    params = `before=${encodeURIComponent(last.time)}&before_id=${last.id}`
  }
  expect(seen).toEqual(rows().map((r) => r.record.id).reverse())
})

// Found by an adversarial probe: a cursor whose time is none (tampered with, or cut) was refused
// "before and before_id go together", though both were given: the detail now names what is wrong.
it('a cursor whose time is not a time says so; one without its id says they go together', async () => {
  const ask = async (params: string) => {
    const res = await request(`${gateway.adminUrl}/api/audit/page?limit=10&${params}`, { headers: { authorization: `Bearer ${TOKEN}` } })
    return { status: res.statusCode, body: (await res.body.json()) as { code: string; detail: string } }
  }
  expect(await ask('before=%2B275760-09-14T00:00:00Z&before_id=r-001')).toEqual({ status: 400, body: expect.objectContaining({ code: 'bad_request', detail: 'before "+275760-09-14T00:00:00Z" is not a time (a record\'s, e.g. 2026-11-26T10:00:00.123Z).' }) as unknown })
  expect(await ask('before=yesterday&before_id=r-001')).toEqual({ status: 400, body: expect.objectContaining({ detail: 'before "yesterday" is not a time (a record\'s, e.g. 2026-11-26T10:00:00.123Z).' }) as unknown })
  expect(await ask(`before=${encodeURIComponent(new Date(NOW).toISOString())}`)).toEqual({ status: 400, body: expect.objectContaining({ detail: 'before (a record\'s time) and before_id (its id) go together.' }) as unknown })
})
