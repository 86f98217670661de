// A sender-constrained opaque token: its introspection answer carries the `cnf` (RFC 8705 §3.2), and
// the gateway checks it as it checks a JWT's (idn2-sender-constrained-tokens), on every request,
// the introspection answer cached or not. The check moved from a wrapper around verification to each
// of its ways out (no await or closure more for a token bound to nothing: issue 15), the
// introspected one among them, which no other test sends a bound token down.
import { createHash, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPki, type Issued, type TestPki } from '../helpers/certs.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { answerJson, startIntrospectionEndpoint, type TestIntrospectionEndpoint } from '../helpers/introspection-endpoint.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const OPAQUE_ISSUER = 'https://hp3-opaque.test'
const OPAQUE_AUDIENCE = 'api://hp3-opaque'

let pki: TestPki
let endpoint: TestIntrospectionEndpoint
let upstream: TestUpstream
let gateway: TestGateway
let mine: Issued
let other: Issued

beforeAll(async () => {
  pki = createPki()
  mine = pki.ca.issue('hp3-agent', { usage: 'client' })
  other = pki.ca.issue('hp3-someone-else', { usage: 'client' })
  endpoint = await startIntrospectionEndpoint()
  upstream = await startUpstream()
  const exp = Math.floor(Date.now() / 1000) + 600
  const answer = (cnf: unknown) => answerJson({ active: true, sub: 'agent', aud: OPAQUE_AUDIENCE, exp, ...(cnf === undefined ? {} : { cnf }) })
  endpoint.answers.set('hp3-bound', answer({ 'x5t#S256': thumbprint(mine) }))
  endpoint.answers.set('hp3-dpop', answer({ jkt: 'hp3-thumbprint-of-a-dpop-key' }))
  endpoint.answers.set('hp3-plain', answer(undefined))
  gateway = await startTestGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key, client_ca: pki.ca.cert, client_auth: 'optional' } },
    issuers: [{ name: 'opaque', issuer: OPAQUE_ISSUER, audiences: [OPAQUE_AUDIENCE], introspection: { url: endpoint.url, client_id: 'bouncer', client_secret: 'bouncer-secret', cache: '1m' } }],
    ...allowAnyCaller(['opaque']),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'api', path: '/*', upstream: 'api' }],
  })
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await endpoint?.close()
  pki?.close()
})

function thumbprint(cert: Issued): string {
  return createHash('sha256').update(new X509Certificate(readFileSync(cert.cert)).raw).digest('base64url')
}

async function call(token: string, cert: Issued | null = null): Promise<{ status: number; code?: string }> {
  const agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost', ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}) } })
  try {
    const res = await request(`${gateway.url}/x`, { dispatcher: agent, headers: { authorization: `Bearer ${token}` } })
    const text = await res.body.text()
    return { status: res.statusCode, code: res.statusCode === 200 ? undefined : (JSON.parse(text) as { code?: string }).code }
  } finally {
    await agent.close()
  }
}

it('takes an introspected certificate-bound token only with that certificate, its answer cached or not', async () => {
  expect(await call('hp3-bound')).toEqual({ status: 401, code: 'client_cert_required' })
  expect(await call('hp3-bound', mine)).toEqual({ status: 200, code: undefined })
  // The answer is cached now (one introspection): still refused without the certificate, or with another.
  expect(await call('hp3-bound')).toEqual({ status: 401, code: 'client_cert_required' })
  expect(await call('hp3-bound', other)).toEqual({ status: 401, code: 'client_cert_required' })
  expect(await call('hp3-bound', mine)).toEqual({ status: 200, code: undefined })
  expect(endpoint.asked.filter((token) => token === 'hp3-bound')).toHaveLength(1)
})

it('refuses an introspected DPoP-bound token as a bearer token, and takes an unbound one with no certificate', async () => {
  expect(await call('hp3-dpop', mine)).toEqual({ status: 401, code: 'malformed_token' })
  expect(await call('hp3-plain')).toEqual({ status: 200, code: undefined })
  expect(await call('hp3-plain', other)).toEqual({ status: 200, code: undefined })
})
