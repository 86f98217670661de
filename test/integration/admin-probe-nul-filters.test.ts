// A search filter holding NUL (`?principal=svc%00x`) against the PostgreSQL audit log: PostgreSQL
// text cannot hold NUL, so every console read and GET /api/audit answered 500 internal_error and
// logged the database's refusal as a failure of the gateway's (found by the operator probe). The
// log keeps a NUL of a token's claims as U+FFFD (audit/record.ts): a filter is read the same way,
// so it finds the record of the subject that held one, on SQLite and PostgreSQL alike.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'nul-filters-admin-token-0123456789'
const SUBJECT = 'svc\u0000nul'
let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
const schema = uniqueSchema('nulfilter')
const gateways: Record<'postgres' | 'sqlite', TestGateway> = {} as never

const get = async (gw: TestGateway, path: string) => {
  const res = await request(`${gw.adminUrl}/api/${path}`, { headers: { authorization: `Bearer ${ADMIN}` } })
  return { status: res.statusCode, body: await res.body.text() }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-nul-filters-'))
  idp = await startIdentityProvider()
  upstream = await startUpstream(async (_req, res) => void res.end('ok'))
  const sinks = { postgres: { type: 'postgres', url: SHARED_POSTGRES, schema }, sqlite: { type: 'sqlite', path: join(dir, 'audit.db') } }
  const token = await idp.mint({ sub: SUBJECT })
  for (const kind of ['postgres', 'sqlite'] as const) {
    const gw = await startTestGateway({
      admin: { token: ADMIN },
      audit: { sinks: [sinks[kind]], spill_dir: join(dir, `spill-${kind}`), flush_interval: '10ms' },
      issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
      ...allowAnyCaller(['corp']),
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'reports', path: '/reports/*', upstream: 'api' }],
    })
    gateways[kind] = gw
    const res = await request(`${gw.url}/reports/1`, { headers: { authorization: `Bearer ${token}` } })
    expect(res.statusCode).toBe(200)
    await res.body.dump()
    await waitFor(async () => (await get(gw, 'audit')).body.includes('/reports/1'), `the ${kind} record`)
  }
})
afterAll(async () => {
  for (const gw of Object.values(gateways)) await gw.close()
  await upstream.close()
  await idp.stop()
  await dropSchema(SHARED_POSTGRES, schema)
  await rm(dir, { recursive: true, force: true })
})

describe.each(['postgres', 'sqlite'] as const)('a filter holding NUL, %s log', (kind) => {
  it('GET /api/audit and /api/audit/page find the record of the subject that held it, as the log keeps it', async () => {
    const gw = gateways[kind]
    const search = await get(gw, 'audit?principal=svc%00nul')
    expect(search.status, search.body).toBe(200)
    expect(JSON.parse(search.body)).toMatchObject([{ path: '/reports/1', subject: 'svc\ufffdnul' }])
    const page = await get(gw, 'audit/page?principal=svc%00nul')
    expect(page.status, page.body).toBe(200)
    expect(JSON.parse(page.body)).toMatchObject({ records: [{ path: '/reports/1' }] })
  })

  it('the console\'s other reads answer, not 500', async () => {
    const gw = gateways[kind]
    for (const path of ['audit?actor=%00', 'audit?route=%00', 'overview?principal=svc%00nul', 'overview?route=%00', 'denials?principal=%00', 'audit/export?principal=svc%00nul']) {
      const answer = await get(gw, path)
      expect(answer.status, `${path}: ${answer.body}`).toBe(200)
    }
    const exported = await get(gw, 'audit/export?principal=svc%00nul')
    expect(exported.body).toContain('/reports/1')
    expect(gw.logs.join('\n')).not.toContain('admin request failed')
  })
})
