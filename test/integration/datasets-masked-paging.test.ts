// Found by an adversarial probe (helper): a masked column that is also the paging key. The mask
// must hide the value in every place the caller can read it: the cursor was base64url JSON (signed,
// not sealed) carrying the last row's real key. And the body's cursor was made after the masks
// were applied in place, so the next page started again from '***'.
import pg from 'pg'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'
import { waitFor } from '../helpers/wait.ts'

const TABLE = `bouncer_masked_paging_${process.pid}_${Date.now() % 1_000_000}`
let idp: TestIdentityProvider
let gw: TestGateway
let db: pg.Client
let analyst: string

beforeAll(async () => {
  db = new pg.Client({ connectionString: SHARED_POSTGRES })
  await db.connect()
  await db.query(`CREATE TABLE ${TABLE} (customer_email text PRIMARY KEY, total int)`)
  // 5000 rows: more than one batch (4096), for the trailer case.
  await db.query(`INSERT INTO ${TABLE} SELECT 'secret-person-' || lpad(g::text, 5, '0') || '@corp.test', g FROM generate_series(1, 5000) g`)
  idp = await startIdentityProvider()
  analyst = await idp.mint({ sub: 'ana', groups: ['analyst'] })
  gw = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [
      { name: 'analyst', assumed_by: [{ issuer: 'corp', claims: { groups: 'analyst' } }], policies: ['read'] },
      { name: 'finance', assumed_by: [{ issuer: 'corp', claims: { groups: 'finance' } }], policies: ['read'] },
    ],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET', 'HEAD'], routes: ['*'] }] }],
    datasources: [{ name: 'warehouse', type: 'postgres', url: SHARED_POSTGRES, max_connections: 4, key: 'a-test-key-of-32-characters-long' }],
    routes: [
      {
        id: 'ds.small',
        methods: ['GET'],
        path: '/ds/small',
        dataset: { source: 'warehouse', sql: `SELECT customer_email, total FROM ${TABLE} ORDER BY customer_email`, page_size: 2, masks: { customer_email: { with: 'redact', unless_roles: ['finance'] } } },
      },
      {
        id: 'ds.big',
        methods: ['GET'],
        path: '/ds/big',
        dataset: { source: 'warehouse', sql: `SELECT customer_email, total FROM ${TABLE} ORDER BY customer_email`, page_size: 4500, masks: { customer_email: { with: 'hash', unless_roles: ['finance'] } } },
      },
    ],
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys')
})

afterAll(async () => {
  await gw?.close()
  await idp?.stop()
  await db?.query(`DROP TABLE IF EXISTS ${TABLE}`)
  await db?.end()
})

/** Whatever a caller can read out of a cursor: its bytes, as text. */
function decodeCursor(cursor: string): string {
  return Buffer.from(cursor.replace(/\./g, ''), 'base64url').toString('latin1')
}

describe('a masked paging key', () => {
  it('the cursor an analyst gets does not reveal the masked (redacted) key value', async () => {
    const res = await request(`${gw.url}/ds/small`, { headers: { authorization: `Bearer ${analyst}` } })
    const body = (await res.body.json()) as { rows: Array<Record<string, unknown>>; next: string | null }
    expect(res.statusCode).toBe(200)
    expect(body.rows.map((r) => r.customer_email)).toEqual(['***', '***'])
    expect(body.next).not.toBeNull()
    // The row itself says '***'; the cursor must not say 'secret-person-00002@corp.test'.
    expect(decodeCursor(body.next as string)).not.toContain('secret-person')
    // The same cursor is in the header (JSON answers carry it too when the page fit one batch).
    const header = res.headers['bouncer-next-cursor'] as string | undefined
    expect(header).toBeDefined()
    expect(decodeCursor(header as string)).not.toContain('secret-person')
  })

  it('following next from the JSON body reaches the next rows, not the first page again', async () => {
    const headers = { authorization: `Bearer ${analyst}` }
    const finance = { authorization: `Bearer ${await idp.mint({ sub: 'fin', groups: ['finance'] })}` }
    // Finance sees the values: the second page is rows 3 and 4.
    const f1 = (await (await request(`${gw.url}/ds/small`, { headers: finance })).body.json()) as { next: string }
    const f2 = (await (await request(`${gw.url}/ds/small?cursor=${encodeURIComponent(f1.next)}`, { headers: finance })).body.json()) as { rows: Array<{ total: number }> }
    expect(f2.rows.map((r) => Number(r.total))).toEqual([3, 4])
    // The analyst's second page must be the same rows (masked).
    const a1 = (await (await request(`${gw.url}/ds/small`, { headers })).body.json()) as { next: string }
    const a2 = (await (await request(`${gw.url}/ds/small?cursor=${encodeURIComponent(a1.next)}`, { headers })).body.json()) as { rows: Array<{ total: number }> }
    expect(a2.rows.map((r) => Number(r.total))).toEqual([3, 4])
  })

  it('pages past a first batch (trailer cursor) for a caller whose key column is masked', async () => {
    const first = await request(`${gw.url}/ds/big`, { headers: { authorization: `Bearer ${analyst}` } })
    const page1 = (await first.body.json()) as { rows: unknown[]; next: string | null }
    expect(page1.rows.length).toBe(4500)
    expect(page1.next).not.toBeNull()
    const second = await request(`${gw.url}/ds/big?cursor=${encodeURIComponent(page1.next as string)}`, { headers: { authorization: `Bearer ${analyst}` } })
    const page2 = (await second.body.json()) as { rows: unknown[]; next: string | null }
    expect(second.statusCode).toBe(200)
    // 5000 rows: the second page holds the last 500.
    expect(page2.rows.length).toBe(500)
  })
})
