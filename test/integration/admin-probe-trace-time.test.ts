// GET /api/audit/trace read its `time` with Date.parse, as no other endpoint reads a time: a year
// PostgreSQL has no timestamp for (-271821-04-20T00:00:00Z) was a 500 internal_error, logged as the
// gateway's failure, and `time=12` was read as 2001-12-01 in the server's zone (found by the
// operator probe). It reads a time as the search does (RFC 3339, UTC without a zone).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'trace-time-admin-token-0123456789'
const schema = uniqueSchema('tracetime')
let dir: string
let upstream: TestUpstream
let gw: TestGateway

const get = async (path: string) => {
  const res = await request(`${gw.adminUrl}/api/${path}`, { headers: { authorization: `Bearer ${ADMIN}` } })
  return { status: res.statusCode, body: await res.body.text() }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-trace-time-'))
  upstream = await startUpstream(async (_req, res) => void res.end('ok'))
  gw = await startTestGateway({
    admin: { token: ADMIN },
    audit: { sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema }], spill_dir: join(dir, 'spill'), flush_interval: '10ms' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }],
  })
  await (await request(`${gw.url}/report`)).body.dump()
  await waitFor(async () => (await get('audit')).body.includes('/report'), 'the record')
})
afterAll(async () => {
  await gw.close()
  await upstream.close()
  await dropSchema(SHARED_POSTGRES, schema)
  await rm(dir, { recursive: true, force: true })
})

it('a time that is not one is 400 bad_request, not a 500, and a record is found by its own time', async () => {
  for (const time of ['-271821-04-20T00:00:00Z', '12', 'Dec 1']) {
    const answer = await get(`audit/trace?id=x&time=${encodeURIComponent(time)}`)
    expect(answer.status, `${time}: ${answer.body}`).toBe(400)
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'bad_request' })
  }
  const [record] = JSON.parse((await get('audit')).body) as Array<{ id: string; time: string }>
  const found = await get(`audit/trace?id=${record?.id}&time=${encodeURIComponent(record?.time ?? '')}`)
  expect(found.status, found.body).toBe(200)
  expect(JSON.parse(found.body)).toMatchObject({ record: { id: record?.id, path: '/report' } })
  expect(gw.logs.join('\n')).not.toContain('admin request failed')
})
