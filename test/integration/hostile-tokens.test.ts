// Issue 22 over the wire, against a real OpenID provider: time claims that are not times, JWTs of
// another kind than an access token, tokens built to cost CPU, and values built to fill the logs
// and the audit log. Every one is a 401 with its code; none is a 500, a stack trace in the log, a
// log line per request, or kilobytes of the attacker's text in the audit record.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CompactSign, decodeProtectedHeader, importJWK } from 'jose'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AuditRecord } from '../../src/audit/record.ts'
import { searchAudit } from '../../src/audit/search.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type SigningKey, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let db: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-hostile-tokens-'))
  db = join(dir, 'audit.db')
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway({
    // The largest tokens and headers the config allows: the worst case an operator can choose.
    server: { max_token_bytes: 65_536, max_header_bytes: 262_144 },
    audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE], clock_tolerance: '5s', jwks_cooldown: '0s' }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'data', url: upstream.url }],
    routes: [
      { id: 'data', path: '/data/*', upstream: 'data' },
      { id: 'open', path: '/public/*', upstream: 'data', public: true },
    ],
  })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys')
})

afterAll(async () => {
  await gateway.close()
  await upstream.close()
  await idp.stop()
  await rm(dir, { recursive: true, force: true })
})

let sent = 0
async function call(token: string | undefined, options: { path?: string; headers?: Record<string, string>; url?: string } = {}) {
  const requestId = `hostile-${++sent}`
  const headers: Record<string, string> = { 'x-request-id': requestId, ...options.headers }
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  const res = await request(`${options.url ?? gateway.url}${options.path ?? '/data/x'}`, { headers })
  const text = await res.body.text()
  const body = res.headers['content-type'] === 'application/problem+json' ? (JSON.parse(text) as { code: string; detail: string }) : undefined
  return { requestId, status: res.statusCode, headers: res.headers, body }
}

async function recordOf(requestId: string): Promise<AuditRecord> {
  let found: AuditRecord | undefined
  await waitFor(async () => {
    found = (await searchAudit({ type: 'sqlite', path: db }, { limit: 1_000 }).catch(() => [])).find((r) => r.request_id === requestId)
    return found !== undefined
  }, `the audit record of ${requestId}`)
  return found as AuditRecord
}

const esKey = () => idp.keys.find((k) => k.alg === 'ES256') as SigningKey
const now = () => Math.floor(Date.now() / 1000)

/** Signed by the provider's key, the claims written as JSON text (JSON.stringify cannot write 1e400 or -0). */
async function signedClaims(rawValues: Record<string, string>, header: Record<string, unknown> = { typ: 'at+jwt' }): Promise<string> {
  const values: Record<string, string> = { iss: JSON.stringify(idp.issuer), aud: JSON.stringify(AUDIENCE), sub: '"minted"', iat: String(now()), exp: String(now() + 300), ...rawValues }
  const payload = `{${Object.entries(values).map(([name, value]) => `${JSON.stringify(name)}:${value}`).join(',')}}`
  return new CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader({ alg: 'ES256', kid: esKey().kid, ...header })
    .sign(await importJWK(esKey().privateJwk, 'ES256'))
}

const b64 = (text: string) => Buffer.from(text).toString('base64url')
const unsigned = (header: string, payload: string) => `${b64(header)}.${b64(payload)}.${'A'.repeat(86)}`

/** Nothing in the log since line `from`: no 500, no stack trace. */
function expectNoInternalErrorsSince(from: number): void {
  const logs = gateway.logs.slice(from).join('')
  expect(logs).not.toContain('request failed unexpectedly')
  expect(logs).not.toContain('RangeError')
}

describe('exp, nbf and iat that are not times (a signed token)', () => {
  it.each([
    ['nbf 1e300', { nbf: '1e300' }, 'malformed_token'],
    ['iat 1e300', { iat: '1e300' }, 'malformed_token'],
    ['exp -1e300', { exp: '-1e300' }, 'malformed_token'],
    ['exp 1e308', { exp: '1e308' }, 'malformed_token'],
    ['exp 1e400 (Infinity once parsed)', { exp: '1e400' }, 'malformed_token'],
    ['nbf -1e400', { nbf: '-1e400' }, 'malformed_token'],
    ['exp "NaN"', { exp: '"NaN"' }, 'malformed_token'],
    ['iat "1e300"', { iat: '"1e300"' }, 'malformed_token'],
    ['exp null', { exp: 'null' }, 'malformed_token'],
    ['nbf true', { nbf: 'true' }, 'malformed_token'],
    ['exp {}', { exp: '{}' }, 'malformed_token'],
    ['exp -0', { exp: '-0' }, 'token_expired'],
    ['exp -8.64e12, the first date', { exp: '-8.64e12' }, 'token_expired'],
    ['nbf 8.64e12, the last date', { nbf: '8.64e12' }, 'token_not_yet_valid'],
    ['iat 8.64e12', { iat: '8.64e12' }, 'token_not_yet_valid'],
  ])('%s: 401 %s', async (_name, claims, code) => {
    const from = gateway.logs.length
    const res = await call(await signedClaims(claims))
    expect(res.status).toBe(401)
    expect(res.body?.code).toBe(code)
    expect(res.headers['www-authenticate']).toMatch(/^Bearer error="invalid_token", error_description="[^"]+"$/)
    expectNoInternalErrorsSince(from)
  })

  it('nbf and iat of -0, and exp at the last date there is, are accepted', async () => {
    expect((await call(await signedClaims({ nbf: '-0', iat: '-0' }))).status).toBe(200)
    expect((await call(await signedClaims({ exp: '8.64e12' }))).status).toBe(200)
  })
})

describe('token types: access tokens only', () => {
  it('the provider\'s own access token (typ at+jwt, oidc-provider) is accepted', async () => {
    const token = await idp.token('looker-reports')
    expect(decodeProtectedHeader(token).typ).toBe('at+jwt')
    expect((await call(token)).status).toBe(200)
  })

  it.each(['at+jwt', 'application/at+jwt', 'AT+JWT', 'JWT', 'jwt', undefined])('an RFC 9068 / plain JWT with typ %s is accepted', async (typ) => {
    expect((await call(await idp.mint({}, { header: { typ } }))).status).toBe(200)
  })

  it.each(['id_token+jwt', 'logout+jwt', 'secevent+jwt', 'application/logout+jwt', 'dpop+jwt'])('a signed %s with the right aud is refused: 401 malformed_token', async (typ) => {
    const res = await call(await idp.mint({}, { header: { typ } }))
    expect(res.status).toBe(401)
    expect(res.body?.code).toBe('malformed_token')
    expect(res.body?.detail).toContain(`typ "${typ}"`)
    expect(res.headers['www-authenticate']).toContain('error="invalid_token"')
  })

  it('token_types: [at+jwt] takes the provider\'s access tokens and nothing untyped or plain', async () => {
    const strict = await startTestGateway({
      issuers: [{ name: 'strict', issuer: idp.issuer, audiences: [AUDIENCE], token_types: ['at+jwt'] }],
      ...allowAnyCaller(['strict']),
      upstreams: [{ name: 'data', url: upstream.url }],
      routes: [{ id: 'data', path: '/data/*', upstream: 'data' }],
    })
    try {
      await waitFor(() => strict.state.runtime.issuerKeys.get('strict')?.state === 'ready', 'the issuer keys')
      expect((await call(await idp.token('looker-reports'), { url: strict.url })).status).toBe(200)
      expect((await call(await idp.mint({}, { header: { typ: 'JWT' } }), { url: strict.url })).body?.code).toBe('malformed_token')
      expect((await call(await idp.mint({}, { header: { typ: undefined } }), { url: strict.url })).body?.detail).toContain('has no typ')
    } finally {
      await strict.close()
    }
  })
})

describe('tokens built to cost CPU', () => {
  const slashes = (n: number) => unsigned('{"alg":"ES256","kid":"ec-1"}', `{"iss":"${idp.issuer}${'/'.repeat(n)}x"}`)
  const nestedAlg = (n: number) => unsigned(`{"alg":${'['.repeat(n)}${']'.repeat(n)},"kid":"ec-1"}`, `{"iss":"${idp.issuer}","exp":${now() + 60}}`)

  it('64 KB of slashes in iss, a 64 KB nested alg, 32,768 segments: each a 401, and the public route answers alongside', async () => {
    const hostile = [
      [slashes(48_000), 'issuer_unknown'],
      [nestedAlg(24_000), 'malformed_token'],
      [`${'a.'.repeat(32_767)}aa`, 'malformed_token'],
    ] as const
    const from = gateway.logs.length
    const answers = await Promise.all([
      ...Array.from({ length: 30 }, (_, i) => call((hostile[i % 3] as readonly [string, string])[0])),
      call(undefined, { path: '/public/x' }),
    ])
    expect(answers.at(-1)?.status).toBe(200)
    answers.slice(0, -1).forEach((res, i) => {
      expect(res.status).toBe(401)
      expect(res.body?.code).toBe((hostile[i % 3] as readonly [string, string])[1])
    })
    expectNoInternalErrorsSince(from)
  })
})

describe('values built to fill the logs and the audit log', () => {
  it('thirty drifted issuers get thirty drift details and one warning line', async () => {
    const before = gateway.logs.filter((l) => l.includes('"msg":"issuer drift"')).length
    for (let i = 1; i <= 30; i++) {
      const res = await call(await idp.mint({ iss: `${idp.issuer}${'/'.repeat(i)}` }))
      expect(res.body?.code).toBe('issuer_unknown')
      expect(res.body?.detail).toContain('issuer drift')
    }
    expect(gateway.logs.filter((l) => l.includes('"msg":"issuer drift"')).length - before).toBeLessThanOrEqual(1)
  })

  it('a 6,000-character iss is cut in the answer, WWW-Authenticate and the audit record, saying so', async () => {
    const res = await call(unsigned('{"alg":"ES256"}', `{"iss":"https://evil.example/${'a'.repeat(5_979)}"}`))
    expect(res.body?.code).toBe('issuer_unknown')
    expect(res.body?.detail).toContain('…(truncated, 6000 chars)')
    expect(res.body?.detail.length).toBeLessThan(400)
    expect(String(res.headers['www-authenticate']).length).toBeLessThan(500)
    const record = await recordOf(res.requestId)
    expect(record.detail).toBe(res.body?.detail)
  })

  it('a huge path, User-Agent and sub are cut in the audit record, saying so', async () => {
    // The longest sub a token may have (principal-name.ts): one longer is refused (principal-name-bounds).
    const res = await call(await idp.mint({ sub: 's'.repeat(2_048) }), { path: `/data/${'p'.repeat(5_000)}`, headers: { 'user-agent': 'u'.repeat(5_000) } })
    expect(res.status).toBe(200)
    const record = await recordOf(res.requestId)
    expect(record.path).toBe(`/data/${'p'.repeat(2_042)}…(truncated, 5006 chars)`)
    expect(record.user_agent).toBe(`${'u'.repeat(512)}…(truncated, 5000 chars)`)
    expect(record.subject).toBe(`${'s'.repeat(256)}…(truncated, 2048 chars)`)
  })
})
