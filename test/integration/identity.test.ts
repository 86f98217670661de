// SPEC "Decisions" step 2 against a real OpenID provider: a good token, every 401 code, and the
// classic attacks (built with jose), each answered with its code and RFC 6750 WWW-Authenticate.
import { createPublicKey } from 'node:crypto'
import { base64url, exportJWK, generateKeyPair, SignJWT } from 'jose'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway({
    issuers: [{ name: 'corp-sso', issuer: idp.issuer, audiences: [AUDIENCE], algorithms: ['RS256', 'ES256'], clock_tolerance: '5s', required_claims: ['tenant'], jwks_cooldown: '0s' }],
    ...allowAnyCaller(['corp-sso']),
    upstreams: [{ name: 'data', url: upstream.url }],
    routes: [
      { id: 'data', path: '/data/*', upstream: 'data' },
      { id: 'open', path: '/public/*', upstream: 'data', public: true },
    ],
  })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'the issuer keys')
})

afterAll(async () => {
  await gateway.close()
  await upstream.close()
  await idp.stop()
})

async function call(token: string | undefined, path = '/data/x', headers: Record<string, string> = {}) {
  const res = await request(`${gateway.url}${path}`, { headers: token === undefined ? headers : { authorization: `Bearer ${token}`, ...headers } })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {}, text }
}

async function refusal(token: string | undefined, code: string, status = 401) {
  const res = await call(token)
  expect(res.status).toBe(status)
  expect(res.body.code).toBe(code)
  expect(res.headers['content-type']).toBe('application/problem+json')
  return res
}

const now = () => Math.floor(Date.now() / 1000)

describe('a good token', () => {
  it('from the client-credentials grant reaches the upstream, without the client Authorization header', async () => {
    const token = await idp.token('looker-reports')
    const res = await call(token)
    expect(res.status).toBe(200)
    const received = res.body as unknown as Received
    expect(received.headers).not.toHaveProperty('authorization')
    expect(received.url).toBe('/data/x')
  })

  it('is accepted with the scheme in any case, and again from the cache', async () => {
    const token = await idp.token('looker-reports')
    for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
      expect((await call(undefined, '/data/x', { authorization: `${scheme} ${token}` })).status).toBe(200)
    }
  })

  it('signed RS256 is accepted too (both algorithms are allowed)', async () => {
    const rsa = idp.keys.find((k) => k.alg === 'RS256')
    expect((await call(await idp.mint({ tenant: 'acme' }, { key: rsa }))).status).toBe(200)
  })

  it('is not needed on a public route', async () => {
    expect((await call(undefined, '/public/x')).status).toBe(200)
  })
})

describe('each 401 code', () => {
  it('missing_token, with WWW-Authenticate: Bearer and no error', async () => {
    const res = await refusal(undefined, 'missing_token')
    expect(res.headers['www-authenticate']).toBe('Bearer')
  })

  it('missing_token for another scheme', async () => {
    const res = await call(undefined, '/data/x', { authorization: 'Basic bG9va2VyOnNlY3JldA==' })
    expect(res.body.code).toBe('missing_token')
    expect(res.body.detail).not.toContain('bG9va2Vy') // never echo credentials
  })

  it.each(['not-a-jwt', 'a.b.c', 'eyJhbGciOiJFUzI1NiJ9.e30', `${'a'.repeat(9000)}`])('malformed_token for "%s"', async (token) => {
    const res = await refusal(token.slice(0, 9000), 'malformed_token')
    expect(res.headers['www-authenticate']).toMatch(/^Bearer error="invalid_token", error_description="[^"]+"$/)
  })

  it('token_expired', async () => {
    const res = await refusal(await idp.mint({ tenant: 'acme', iat: now() - 600, exp: now() - 60 }), 'token_expired')
    expect(res.body.detail).toMatch(/expired at \d{4}-\d\d-\d\dT/)
  })

  it('token_not_yet_valid for nbf, and for iat, in the future', async () => {
    await refusal(await idp.mint({ tenant: 'acme', nbf: now() + 120 }), 'token_not_yet_valid')
    await refusal(await idp.mint({ tenant: 'acme', iat: now() + 120, exp: now() + 600 }), 'token_not_yet_valid')
  })

  it('accepts a clock a little off, within clock_tolerance', async () => {
    expect((await call(await idp.mint({ tenant: 'acme', nbf: now() + 2 }))).status).toBe(200)
  })

  it('issuer_unknown', async () => {
    await refusal(await idp.mint({ tenant: 'acme', iss: 'https://evil.example' }), 'issuer_unknown')
  })

  it('issuer_unknown naming issuer drift: a trailing slash', async () => {
    const res = await refusal(await idp.mint({ tenant: 'acme', iss: `${idp.issuer}/` }), 'issuer_unknown')
    expect(res.body.detail).toContain(`"${idp.issuer}/"`)
    expect(res.body.detail).toContain(`"${idp.issuer}"`)
    expect(res.body.detail).toContain('only by a trailing slash')
    expect(gateway.logs.join('')).toContain('"msg":"issuer drift"')
  })

  it('issuer_unknown naming issuer drift: scheme and letter case', async () => {
    const https = await refusal(await idp.mint({ tenant: 'acme', iss: idp.issuer.replace('http:', 'https:') }), 'issuer_unknown')
    expect(https.body.detail).toContain('only by the scheme (https instead of http)')
    const upper = await refusal(await idp.mint({ tenant: 'acme', iss: idp.issuer.toUpperCase() }), 'issuer_unknown')
    expect(upper.body.detail).toContain('letter case')
  })

  it('audience_mismatch for a real token issued for another API', async () => {
    const res = await refusal(await idp.token('looker-reports', { resource: 'api://billing' }), 'audience_mismatch')
    expect(res.body.detail).toContain('api://billing')
  })

  it('audience_mismatch for a token without aud, unless the issuer accepts client_id as the audience (Cognito)', async () => {
    const token = await idp.mint({ tenant: 'acme', aud: undefined, client_id: AUDIENCE })
    await refusal(token, 'audience_mismatch')
    const cognitoStyle = await startTestGateway({
      issuers: [{ name: 'cognito', issuer: idp.issuer, audiences: [AUDIENCE], client_id_audience: true }],
      ...allowAnyCaller(['cognito']),
      upstreams: [{ name: 'data', url: upstream.url }],
      routes: [{ id: 'data', path: '/*', upstream: 'data' }],
    })
    await waitFor(() => cognitoStyle.state.runtime.issuerKeys.get('cognito')?.state === 'ready', 'keys')
    const ok = await request(`${cognitoStyle.url}/x`, { headers: { authorization: `Bearer ${token}` } })
    expect(ok.statusCode).toBe(200)
    await ok.body.dump()
    const other = await request(`${cognitoStyle.url}/x`, { headers: { authorization: `Bearer ${await idp.mint({ aud: undefined, client_id: 'someone-else' })}` } })
    expect(other.statusCode).toBe(401)
    await other.body.dump()
    await cognitoStyle.close()
  })

  it('key_not_found for a kid the issuer does not have', async () => {
    const stranger = await generateKeyPair('ES256')
    const token = await new SignJWT({ iss: idp.issuer, aud: AUDIENCE, sub: 'x', tenant: 'acme', exp: now() + 60 })
      .setProtectedHeader({ alg: 'ES256', kid: 'ghost' })
      .sign(stranger.privateKey)
    await refusal(token, 'key_not_found')
  })

  it('signature_invalid for a forged signature under a real kid', async () => {
    const stranger = await generateKeyPair('ES256')
    const token = await new SignJWT({ iss: idp.issuer, aud: AUDIENCE, sub: 'x', tenant: 'acme', exp: now() + 60 })
      .setProtectedHeader({ alg: 'ES256', kid: 'ec-1' })
      .sign(stranger.privateKey)
    await refusal(token, 'signature_invalid')
  })

  it('signature_invalid for a real token whose claims were edited', async () => {
    const [header, payload, signature] = (await idp.token('looker-reports')).split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>
    const edited = base64url.encode(JSON.stringify({ ...claims, sub: 'admin' }))
    await refusal(`${header}.${edited}.${signature}`, 'signature_invalid')
  })

  it('claim_missing for a real token without a required claim', async () => {
    const res = await refusal(await idp.token('no-tenant'), 'claim_missing')
    expect(res.body.detail).toContain('tenant')
  })

  it('claim_missing when exp is absent (exp is always required)', async () => {
    await refusal(await idp.mint({ tenant: 'acme', exp: undefined }), 'claim_missing')
  })
})

describe('the classic attacks', () => {
  it('alg none: algorithm_not_allowed', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))
    const payload = base64url.encode(JSON.stringify({ iss: idp.issuer, aud: AUDIENCE, sub: 'admin', tenant: 'acme', exp: now() + 60 }))
    await refusal(`${header}.${payload}.`, 'algorithm_not_allowed')
  })

  it('HS256 signed with the issuer\'s RSA public key as the secret: algorithm_not_allowed', async () => {
    const rsa = idp.keys.find((k) => k.alg === 'RS256')!
    const pem = createPublicKey({ key: rsa.publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' })
    const token = await new SignJWT({ iss: idp.issuer, aud: AUDIENCE, sub: 'admin', tenant: 'acme', exp: now() + 60 })
      .setProtectedHeader({ alg: 'HS256', kid: rsa.kid })
      .sign(new TextEncoder().encode(String(pem)))
    await refusal(token, 'algorithm_not_allowed')
  })

  it('an algorithm outside the allow-list (PS256 with the real RSA key): algorithm_not_allowed', async () => {
    const rsa = idp.keys.find((k) => k.alg === 'RS256')!
    await refusal(await idp.mint({ tenant: 'acme' }, { key: { ...rsa, alg: 'PS256' as never, privateJwk: { ...rsa.privateJwk, alg: 'PS256' } } }), 'algorithm_not_allowed')
  })

  it.each(['jwk', 'jku', 'x5u', 'x5c'])('a key embedded in the header (%s) is never trusted: malformed_token', async (parameter) => {
    const attacker = await generateKeyPair('ES256', { extractable: true })
    const values: Record<string, unknown> = {
      jwk: await exportJWK(attacker.publicKey),
      jku: 'http://127.0.0.1:1/keys',
      x5u: 'http://127.0.0.1:1/cert',
      x5c: ['MIIB'],
    }
    const token = await new SignJWT({ iss: idp.issuer, aud: AUDIENCE, sub: 'admin', tenant: 'acme', exp: now() + 60 })
      .setProtectedHeader({ alg: 'ES256', [parameter]: values[parameter] })
      .sign(attacker.privateKey)
    const res = await refusal(token, 'malformed_token')
    expect(res.body.detail).toContain(parameter)
  })

  it('a token in the query string is refused: 400 bad_request', async () => {
    const token = await idp.token('looker-reports')
    const res = await call(undefined, `/data/x?access_token=${token}`)
    expect(res.status).toBe(400)
    expect(res.body.code).toBe('bad_request')
    expect(res.text).not.toContain(token)
  })

  it('two Authorization headers are refused: 400 bad_request', async () => {
    const token = await idp.token('looker-reports')
    const res = await rawRequest(Number(new URL(gateway.url).port), `GET /data/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nAuthorization: Bearer forged\r\n\r\n`)
    expect(res.status).toBe(400)
    expect(JSON.parse(res.body)).toMatchObject({ code: 'bad_request' })
  })

  it('no detail ever echoes the token', async () => {
    const token = await idp.mint({ tenant: 'acme', exp: now() - 600, iat: now() - 900 })
    const res = await call(token)
    expect(res.text).not.toContain(token.split('.')[2])
    expect(String(res.headers['www-authenticate'])).not.toContain(token.split('.')[2])
  })
})
