// Found by the identity probe: with auth_failures set, a caller spraying made-up opaque tokens at an
// introspecting issuer was never held back — each was 401 token_revoked (the provider's active:
// false, RFC 7662 §2.2, which a revoked token and one never issued both get), not counted, and each
// cost the provider an introspection: 30 guesses, 30 questions. The provider's own inactive answer
// now counts, once: not again for the requests that waited on the same question, nor from
// negative_cache, so a dashboard's tiles retrying one dead token are not held back for it.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { answerJson, startIntrospectionEndpoint, type TestIntrospectionEndpoint } from '../helpers/introspection-endpoint.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, waitForMetric } from '../helpers/wait.ts'

const LEGACY = 'https://legacy.test'
const BURST = 5

let endpoint: TestIntrospectionEndpoint
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  endpoint = await startIntrospectionEndpoint()
  upstream = await startUpstream()
  gw = await startTestGateway({
    // Each test's caller comes from an address of its own (X-Forwarded-For from a trusted peer).
    server: { trusted_proxies: ['127.0.0.1/32'] },
    auth_failures: { rate: '1/h', burst: BURST },
    issuers: [{ name: 'legacy', issuer: LEGACY, audiences: ['api://legacy'], introspection: { url: endpoint.url, client_id: 'bouncer', client_secret: 'bouncer-secret', negative_cache: '60s' } }],
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'legacy', subject: '*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['reports'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'api' }],
  })
}, 60_000)

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await endpoint?.close()
})

async function call(token: string, from: string): Promise<{ status: number; code?: string }> {
  const res = await request(`${gw.url}/reports/daily`, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': from } })
  const text = await res.body.text()
  return { status: res.statusCode, code: res.statusCode === 200 ? undefined : (JSON.parse(text) as { code?: string }).code }
}

it('a caller spraying made-up opaque tokens is held back after the burst, and costs the provider no more questions', async () => {
  const answers: string[] = []
  for (let i = 0; i < 20; i++) {
    const res = await call(`made-up-${i}`, '10.0.0.1')
    answers.push(`${res.status} ${res.code}`)
  }
  expect(answers.slice(0, BURST)).toEqual(Array(BURST).fill('401 token_revoked'))
  expect(answers.slice(-10)).toEqual(Array(10).fill('429 rate_limited'))
  expect(endpoint.asked.filter((token) => token.startsWith('made-up-')).length).toBeLessThanOrEqual(BURST + 1)
})

it('a dashboard\'s tiles sending one revoked token at once are one failure: the caller is not held back', async () => {
  // The provider answers once every tile waits on its one question.
  const release = deferred()
  endpoint.answers.set('revoked-tiles', (res) => void release.promise.then(() => answerJson({ active: false })(res)))
  const pending = Promise.all(Array.from({ length: 4 * BURST }, () => call('revoked-tiles', '10.0.0.3')))
  await waitForMetric(gw.adminUrl, 'bouncer_requests_in_flight', 4 * BURST)
  release.resolve()
  const tiles = await pending
  expect(new Set(tiles.map((t) => `${t.status} ${t.code}`))).toEqual(new Set(['401 token_revoked']))
  expect(endpoint.asked.filter((token) => token === 'revoked-tiles')).toHaveLength(1)
  endpoint.answers.set('fresh-token', answerJson({ active: true, sub: 'dashboard', aud: 'api://legacy' }))
  expect(await call('fresh-token', '10.0.0.3')).toEqual({ status: 200, code: undefined })
})

it('one revoked token retried in a loop is asked about once and its caller is not held back for it', async () => {
  for (let i = 0; i < 3 * BURST; i++) expect(await call('revoked-once', '10.0.0.2')).toEqual({ status: 401, code: 'token_revoked' })
  expect(endpoint.asked.filter((token) => token === 'revoked-once')).toHaveLength(1)
})
