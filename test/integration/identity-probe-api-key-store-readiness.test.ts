// Found by the identity probe (a careless operator, a failing dependency): with API keys in
// PostgreSQL, /readyz said ready and named no API key store while the store could not be reached (a
// wrong url, the server away at the start): the store was first read at the first key's lookup, so
// every API key request was 503 on a gateway the load balancer took for ready. The store is asked
// at once now, and again until it answers; /readyz waits for that, as for the Redis session store,
// and names the store's state in api_key_store.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { readyz, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startPostgres, type PrivatePostgres } from '../helpers/postgres.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let postgres: PrivatePostgres
let upstream: TestUpstream
let gateway: TestGateway
const ADMIN = 'api-key-store-readiness-admin-token-0123'

beforeAll(async () => {
  postgres = await startPostgres()
  await postgres.stop()
  upstream = await startUpstream()
  gateway = await startTestGateway({
    api_keys: { store: { type: 'postgres', url: postgres.url, schema: 'keys' } },
    roles: [{ name: 'bi', assumed_by: [{ issuer: 'api-keys' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['api_key'] }],
    admin: { listen: '127.0.0.1:0', token: ADMIN },
  })
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await postgres?.destroy()
})

it('is not ready while its PostgreSQL API key store cannot be reached, and says why', async () => {
  await waitFor(async () => (await readyz(gateway)).checks.api_key_store?.startsWith('unavailable: ') === true, 'the store\'s first failure')
  const answer = await readyz(gateway)
  expect(answer.status).toBe(503)
  expect(answer.checks.api_key_store).toMatch(/^unavailable: .*ECONNREFUSED/)
})

// Found by the same probe: the admin API answered the store's absence with a bare 500 internal_error.
it('answers the admin API\'s key list and revocations 503 while the store cannot be reached, saying why', async () => {
  for (const [method, path] of [['GET', '/api/keys'], ['DELETE', '/api/keys/0123456789abcdef']] as const) {
    const res = await request(`${gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}` } })
    const body = (await res.body.json()) as { code: string; detail: string }
    expect({ method, status: res.statusCode, code: body.code }).toEqual({ method, status: 503, code: 'identity_provider_unavailable' })
    expect(body.detail).toMatch(/^The API key store \(PostgreSQL .*\) cannot be read: .*ECONNREFUSED.*; try again shortly\.$/)
    expect(res.headers['retry-after']).toBe('1')
  }
})

it('is ready once the store answers, without an API key request to read it', async () => {
  await postgres.start()
  await waitFor(async () => (await readyz(gateway)).status === 200, 'ready', 40_000)
  expect((await readyz(gateway)).checks.api_key_store).toBe('ready')
})
