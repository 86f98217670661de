// Found by an adversarial probe (helper): a cursor's scope named the caller by issuer and subject only. One
// person with two tokens (an `org_id` claim for each of two orgs) carried a cursor issued over one org's rows
// to the other's, which paged the second org from the first org's key position. What the statement binds
// from the caller is now part of the scope; the scope is sealed as a digest, so a long bound claim does not
// lengthen the cursor.
import pg from 'pg'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'
import { waitFor } from '../helpers/wait.ts'

const ORGS = `probe_orgs_${process.pid}_${Date.now() % 1_000_000}`
const MANY_GROUPS = Array.from({ length: 100 }, (_, i) => `a-long-group-${i}`)

let idp: TestIdentityProvider
let gw: TestGateway
let db: pg.Client

beforeAll(async () => {
  db = new pg.Client({ connectionString: SHARED_POSTGRES })
  await db.connect()
  await db.query(`CREATE TABLE ${ORGS} (id int PRIMARY KEY, org text)`)
  await db.query(`INSERT INTO ${ORGS} SELECT g, CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END FROM generate_series(1, 20) g`)
  idp = await startIdentityProvider()
  gw = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'analyst', assumed_by: [{ issuer: 'corp', claims: { groups: 'analyst' } }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    datasources: [{ name: 'wh', type: 'postgres', url: SHARED_POSTGRES, max_connections: 2, key: 'a-test-key-of-32-characters-long' }],
    routes: [
      { id: 'orgs', methods: ['GET'], path: '/orgs', dataset: { source: 'wh', sql: `SELECT id, org FROM ${ORGS} WHERE org = :claims.org_id`, page_size: 2 } },
      { id: 'orgs.groups', methods: ['GET'], path: '/orgs/groups', dataset: { source: 'wh', sql: `SELECT id, org FROM ${ORGS} WHERE cardinality(:claims.groups::text[]) > 0`, page_size: 2 } },
    ],
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys')
})

afterAll(async () => {
  await gw?.close()
  await idp?.stop()
  await db?.query(`DROP TABLE IF EXISTS ${ORGS}`)
  await db?.end()
})

async function page(path: string, token: string): Promise<{ status: number; body: { rows?: Array<{ id: number; org: string }>; next?: string | null; code?: string; detail?: string } }> {
  const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
  return { status: res.statusCode, body: (await res.body.json()) as never }
}

describe('a dataset cursor and the claims its statement binds', () => {
  it('a cursor issued to one org\'s token is refused for the same person\'s token of another org', async () => {
    const acme = await idp.mint({ sub: 'ana', groups: ['analyst'], org_id: 'acme' })
    const globex = await idp.mint({ sub: 'ana', groups: ['analyst'], org_id: 'globex' })
    const first = await page('/orgs', acme)
    expect(first.status).toBe(200)
    expect(first.body.rows?.map((row) => row.org)).toEqual(['acme', 'acme'])
    const cursor = first.body.next as string
    expect(cursor).toBeTruthy()

    const carried = await page(`/orgs?cursor=${encodeURIComponent(cursor)}`, globex)
    expect(carried.status).toBe(400)
    expect(carried.body).toMatchObject({ code: 'invalid_parameter', detail: expect.stringContaining('issued for other parameters, another dataset, another caller') })

    // Another token with the same claims (a refreshed one) pages on.
    const acmeAgain = await idp.mint({ sub: 'ana', groups: ['analyst'], org_id: 'acme', nonce: 'another token' })
    expect(acmeAgain).not.toBe(acme)
    const next = await page(`/orgs?cursor=${encodeURIComponent(cursor)}`, acmeAgain)
    expect(next.status).toBe(200)
    expect(next.body.rows).toEqual([{ id: 6, org: 'acme' }, { id: 8, org: 'acme' }])
  })

  it('a long claim bound by the statement does not lengthen the cursor', async () => {
    const token = await idp.mint({ sub: 'gus', groups: ['analyst', ...MANY_GROUPS] })
    const first = await page('/orgs/groups', token)
    expect(first.status).toBe(200)
    expect((first.body.next as string).length).toBeLessThan(200)
    const next = await page(`/orgs/groups?cursor=${encodeURIComponent(first.body.next as string)}`, token)
    expect(next.status).toBe(200)
    expect(next.body.rows?.map((row) => row.id)).toEqual([3, 4])
  })
})
