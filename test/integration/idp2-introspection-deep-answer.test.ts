// An introspection answer nested deeper than a token's claims may be (MAX_JSON_DEPTH) is the
// provider answering nonsense (503), as a JWT so nested is malformed: found by a probe, such an
// answer was parsed and its claims taken, and each place that writes claims out again overflowed the
// stack (JSON.stringify) — a 500 internal_error for an `iss` so nested, and for a token exchange of
// an opaque token carrying such a claim.
import type { ServerResponse } from 'node:http'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchange, ISSUER } from '../helpers/exchange.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startIntrospectionEndpoint, type TestIntrospectionEndpoint } from '../helpers/introspection-endpoint.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const LEGACY = 'https://legacy.test'
const AUD = 'api://legacy'
/** Well inside the answer's 64 KB, and past what JSON.stringify can write out again. */
const DEPTH = 20_000

let endpoint: TestIntrospectionEndpoint
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  endpoint = await startIntrospectionEndpoint()
  upstream = await startUpstream()
  gw = await startTestGateway({
    issuers: [{ name: 'legacy', issuer: LEGACY, audiences: [AUD], introspection: { url: endpoint.url, client_id: 'bouncer', client_secret: 'bouncer-secret', cache: '60s' } }],
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'legacy', subject: '*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['reports'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'api' }],
    token_exchange: { issuer: ISSUER, lifetime: '10m', require_actor: false },
  })
  const nested = `${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}`
  const answer = (claim: string) => (res: ServerResponse) => {
    const text = `{"active":true,"sub":"alice","aud":"${AUD}","exp":${Math.floor(Date.now() / 1000) + 3600},"${claim}":${nested}}`
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }
  endpoint.answers.set('opaque-deep-iss', answer('iss'))
  endpoint.answers.set('opaque-deep-claim', answer('groups'))
}, 60_000)

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await endpoint?.close()
})

it('an answer whose iss nests 20,000 deep: 503 identity_provider_unavailable, not 500', async () => {
  const res = await request(`${gw.url}/reports/daily`, { headers: { authorization: 'Bearer opaque-deep-iss' } })
  const body = (await res.body.json()) as { code?: string; detail?: string }
  expect({ status: res.statusCode, code: body.code }).toEqual({ status: 503, code: 'identity_provider_unavailable' })
  expect(body.detail).toContain('nested deeper than 32')
})

it('an opaque token whose answer carries a claim nested 20,000 deep is not exchanged: 503, not 500', async () => {
  const answer = await exchange(gw.url, { subject: 'opaque-deep-claim' })
  expect(answer.status).toBe(503)
})
