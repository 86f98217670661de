// Found by the audit probe (aud4): the console's audit page read `offset` with Number(), so
// `offset=0x10` skipped 16 records and `offset=1e3` 1000, where `limit` and `status` beside it take
// digits only and refuse the rest (search.ts). Digits only here too; empty is none, as an empty filter is.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const TOKEN = 'aud4-console-offset-admin-token-0123'
let dir: string
let gateway: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aud4-offset-'))
  gateway = await startTestGateway({
    admin: { listen: '127.0.0.1:0', token: TOKEN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'x', path: '/x', upstream: 'api', public: true }],
  })
}, 30_000)

afterAll(async () => {
  await gateway?.close()
  await rm(dir, { recursive: true, force: true })
})

async function statusOf(offset: string): Promise<{ status: number; detail?: string; offset?: number }> {
  const res = await request(`${gateway.adminUrl}/api/audit/page?limit=5&offset=${offset}`, { headers: { authorization: `Bearer ${TOKEN}` } })
  const body = (await res.body.json()) as { detail?: string; offset?: number }
  return { status: res.statusCode, detail: body.detail, offset: body.offset }
}

it('refuses an offset that is not digits, and takes one that is', async () => {
  for (const offset of ['0x10', '1e3', '1.0', '-0', '+5', '1000000']) {
    expect(await statusOf(offset), offset).toEqual({ status: 400, detail: 'offset must be a whole number from 0 to 100000.', offset: undefined })
  }
  expect(await statusOf('10')).toMatchObject({ status: 200, offset: 10 })
  expect(await statusOf('0')).toMatchObject({ status: 200, offset: 0 })
  expect(await statusOf('')).toMatchObject({ status: 200, offset: 0 })
})
