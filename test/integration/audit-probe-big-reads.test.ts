// Found by the audit probe: the console's audit reads held a far page's or a whole export's records at
// once. GET /api/audit/page?offset=100000 read the 100,001 newest records to answer one, and GET
// /api/audit/export read its up to 100,000 records before writing a line: on a log of the largest
// records a client can cause (a path of 2,048 characters, a user agent of 512, a detail of 1,024),
// one read-only caller took the gateway to 2.7 and 3.7 GB of RSS (the Kubernetes manifests give it
// 512 MiB). The gateway runs as `bouncer serve`, so its memory is its own to read.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'
import { copyFirstRecord, waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const TOKEN = 'big-reads-read-token-0123456789abcdef'
/** Records in the log: each ~4 KB, ~200 MB in all. */
const RECORDS = 50_000

let gw: ServeProcess & { dir: string }
let log: string

/** The gateway's peak resident memory so far (VmHWM), in MB. */
function peakMb(): number {
  const line = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${gw.child.pid}/status`, 'utf8'))
  return Number(line?.[1]) / 1024
}

beforeAll(async () => {
  gw = await serveConfig((dir) => ({
    admin: { read_token: TOKEN, token: `${TOKEN}-admin` },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }] },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
  }))
  log = join(gw.dir, 'audit.db')
  // One record as a client can make it, at its bounds (its detail is the gateway's; set to its bound below).
  const res = await request(`${gw.url}/${'a'.repeat(2_100)}`, { headers: { 'user-agent': 'u'.repeat(600) } })
  await res.body.dump()
  await waitForAuditRecord(log, String(res.headers['x-request-id']))
  copyFirstRecord(log, RECORDS)
}, 120_000)

afterAll(async () => {
  await gw?.stop()
})

const get = (path: string) => request(`${gw.adminUrl}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })

it('answers a far page from the database, not from every record before it', async () => {
  const before = peakMb()
  const res = await get(`/api/audit/page?offset=${RECORDS - 1}&limit=1`)
  expect(res.statusCode).toBe(200)
  const page = (await res.body.json()) as { records: Array<{ id: string; detail: string }>; more: boolean; offset: number }
  expect(page.records).toHaveLength(1)
  expect(page.records[0]?.id).toMatch(new RegExp(`-${RECORDS}$`)) // the oldest
  expect(page.more).toBe(false)
  expect(peakMb() - before).toBeLessThan(300)
}, 120_000)

/** An export's lines, counted as they come (the test keeps none but the first and the last). */
async function exportOf(path: string): Promise<{ status: number; headers: Record<string, unknown>; lines: number; first: string; last: string }> {
  const res = await get(path)
  const seen = { lines: 0, first: '', last: '' }
  let tail = ''
  for await (const chunk of res.body) {
    const parts = (tail + (chunk as Buffer).toString('utf8')).split('\n')
    tail = parts.pop() as string
    if (parts.length === 0) continue
    if (seen.lines === 0) seen.first = parts[0] as string
    seen.last = parts.at(-1) as string
    seen.lines += parts.length
  }
  return { status: res.statusCode, headers: res.headers, ...seen }
}

it('writes an export as it reads it, a page at a time, every record once in the order of the search', async () => {
  const before = peakMb()
  const all = await exportOf('/api/audit/export?format=ndjson')
  expect(all).toMatchObject({ status: 200, lines: RECORDS })
  expect(all.headers['x-bouncer-export-truncated']).toBeUndefined()
  expect((JSON.parse(all.first) as { id: string }).id).not.toMatch(/-\d+$/) // the newest: the request's own
  expect((JSON.parse(all.last) as { id: string }).id).toMatch(new RegExp(`-${RECORDS}$`)) // the oldest
  expect(peakMb() - before).toBeLessThan(300)
  // Cut at its limit, which it says; as CSV, a header line first.
  const cut = await exportOf('/api/audit/export?format=csv&limit=2500')
  expect(cut).toMatchObject({ status: 200, lines: 2_501 })
  expect(cut.headers['x-bouncer-export-truncated']).toBe('2500')
  expect(cut.first).toMatch(/^id,time,/)
  expect(cut.last).toMatch(/-2500,/)
}, 120_000)

describe('the same reads of a PostgreSQL log', () => {
  const schema = uniqueSchema('bigreads')
  let pgw: TestGateway
  let upstream: TestUpstream

  beforeAll(async () => {
    upstream = await startUpstream(async (_req, res) => void res.end('ok'))
    pgw = await startTestGateway({
      admin: { token: TOKEN },
      audit: { sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema }], flush_interval: '10ms' },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'open', path: '/open/*', upstream: 'api', public: true }],
    })
    // One at a time, each recorded before the next: their times are in this order, milliseconds apart.
    for (const n of [1, 2, 3]) {
      await (await request(`${pgw.url}/open/${n}`)).body.dump()
      await waitFor(async () => (await searchAudit({ type: 'postgres', url: SHARED_POSTGRES, schema }, { limit: 5 }).catch(() => [])).length === n, `record ${n}`)
    }
  }, 60_000)

  afterAll(async () => {
    await pgw?.close()
    await upstream?.close()
    await dropSchema(SHARED_POSTGRES, schema)
  })

  it('skips the offset in the database', async () => {
    const res = await request(`${pgw.adminUrl}/api/audit/page?offset=1&limit=1`, { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(res.statusCode).toBe(200)
    const page = (await res.body.json()) as { records: Array<{ path: string }>; more: boolean; offset: number }
    expect(page).toMatchObject({ records: [{ path: '/open/2' }], more: true, offset: 1 })
  })

  it('exports the newest records up to the limit, and says more match', async () => {
    const res = await request(`${pgw.adminUrl}/api/audit/export?format=ndjson&limit=2`, { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(res.statusCode).toBe(200)
    expect(res.headers['x-bouncer-export-truncated']).toBe('2')
    const lines = (await res.body.text()).trim().split('\n').map((line) => (JSON.parse(line) as { path: string }).path)
    expect(lines).toEqual(['/open/3', '/open/2'])
  })
})
