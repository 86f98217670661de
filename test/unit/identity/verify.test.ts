// The verifier on hostile input (issue 22): every shape of bogus token is refused with a 401 code,
// for work linear in its size; what it repeats back is bounded; a misconfigured issuer is warned
// about once a minute, not once per token. In process, with a real jose key set (no network).
import { Writable } from 'node:stream'
import { CompactSign, createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import { jwtIssuers, loadConfigText } from '../../../src/config/index.ts'
import { GatewayError } from '../../../src/errors/index.ts'
import { checkClaims, createTokenVerifier, type TokenVerifier } from '../../../src/identity/index.ts'
import type { IssuerKeys } from '../../../src/identity/issuers.ts'
import { MAX_JSON_DEPTH } from '../../../src/identity/jws.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

const ISSUER = 'https://sso.example.com'
const MAX_TOKEN_BYTES = 65_536
let privateKey: CryptoKey
let keys: IssuerKeys

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true })
  privateKey = pair.privateKey
  const getKey = createLocalJWKSet({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }] })
  keys = { name: 'corp', issuer: ISSUER, getKey, keySetOnceTried: async () => getKey, state: 'ready', hasKeys: true, attempted: true, lastError: null, close() {} }
})

function verifier(options: { issuerYaml?: string; now?: () => number } = {}) {
  const yaml = `issuers: [{ name: corp, issuer: "${ISSUER}", audiences: [api], algorithms: [ES256]${options.issuerYaml ?? ''} }]\n`
  const { config } = loadConfigText(yaml, 'test.yaml')
  const logs: string[] = []
  const logger = createLogger({ level: 'debug', destination: new Writable({ write: (chunk: Buffer, _e, done) => (logs.push(chunk.toString()), done()) }) })
  const v = createTokenVerifier({ issuers: jwtIssuers(config!), keys: new Map([['corp', keys]]), maxTokenBytes: MAX_TOKEN_BYTES, cacheEntries: 100, logger, now: options.now })
  return { verifier: v, logs }
}

const b64 = (text: string) => Buffer.from(text).toString('base64url')
const badSignature = 'A'.repeat(86)
const unsigned = (header: string, payload: string) => `${b64(header)}.${b64(payload)}.${badSignature}`
const exp = () => Math.floor(Date.now() / 1000) + 300
const claimsJson = (extra = '') => `{"iss":"${ISSUER}","aud":"api","sub":"svc","exp":${exp()}${extra}}`
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`

/** A token signed with the issuer's key whose claims are exactly this JSON text. */
async function signedRaw(payload: string, header: Record<string, unknown> = {}): Promise<string> {
  return new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg: 'ES256', kid: 'k1', ...header }).sign(privateKey)
}

/** The refusal `verify` throws, with the CPU it took (the thread pool's share included). */
async function refusal(v: TokenVerifier, token: string): Promise<{ error: GatewayError; cpuMs: number }> {
  const before = process.cpuUsage()
  const error = await v.verify(`Bearer ${token}`, '').then(
    () => { throw new Error('the token was accepted') },
    (err: unknown) => err,
  )
  const used = process.cpuUsage(before)
  expect(error).toBeInstanceOf(GatewayError)
  return { error: error as GatewayError, cpuMs: (used.user + used.system) / 1000 }
}

/** Filled to just under max_token_bytes. */
function filled(build: (n: number) => string): string {
  let n = 0
  while (build(n + 1024).length <= MAX_TOKEN_BYTES) n += 1024
  return build(n)
}

describe('a bogus token costs work linear in its size', () => {
  // The bound is a hundred times what the work takes (about 0.3 ms); the quadratic trailing-slash
  // regex took seconds on this token.
  it('an unsigned token whose iss is 64 KB of slashes and an "x": issuer_unknown, not seconds of CPU', async () => {
    const token = filled((n) => unsigned('{"alg":"ES256","kid":"k1"}', `{"iss":"${ISSUER}${'/'.repeat(n)}x"}`))
    expect(token.length).toBeGreaterThan(60_000)
    const { error, cpuMs } = await refusal(verifier().verifier, token)
    expect(error.code).toBe('issuer_unknown')
    expect(cpuMs).toBeLessThan(50)
  })

  it.each([
    ['the header', (n: number) => unsigned(`{"alg":${nested(n)},"kid":"k1"}`, claimsJson())],
    ['the claims', (n: number) => unsigned('{"alg":"ES256","kid":"k1"}', claimsJson(`,"x":${nested(n)}`))],
  ])('JSON nested thousands deep in %s: malformed_token, before it is parsed', async (_where, build) => {
    const { error, cpuMs } = await refusal(verifier().verifier, filled(build))
    expect(error.code).toBe('malformed_token')
    expect(error.detail).toContain(`nested at most ${MAX_JSON_DEPTH} deep`)
    expect(cpuMs).toBeLessThan(50)
  })

  it(`claims nested ${MAX_JSON_DEPTH} deep are fine, one more is malformed_token; brackets inside strings do not count`, async () => {
    const { verifier: v } = verifier()
    // The claims object itself is the first level.
    const deepest = await signedRaw(claimsJson(`,"x":${nested(MAX_JSON_DEPTH - 1)}`))
    await expect(v.verify(`Bearer ${deepest}`, '')).resolves.toMatchObject({ sub: 'svc' })
    const tooDeep = await signedRaw(claimsJson(`,"x":${nested(MAX_JSON_DEPTH)}`))
    expect((await refusal(v, tooDeep)).error.code).toBe('malformed_token')
    const inStrings = await signedRaw(claimsJson(`,"x":"${'['.repeat(100)}","y":"\\"${'{'.repeat(100)}\\\\","z":${nested(3)}`))
    await expect(v.verify(`Bearer ${inStrings}`, '')).resolves.toMatchObject({ sub: 'svc' })
  })

  it('a header whose alg is not a string (an object, an array, absent): malformed_token', async () => {
    const { verifier: v } = verifier()
    for (const header of ['{"alg":{"a":1},"kid":"k1"}', '{"alg":["ES256"],"kid":"k1"}', '{"kid":"k1"}']) {
      expect((await refusal(v, unsigned(header, claimsJson()))).error.code).toBe('malformed_token')
    }
  })

  it.each([
    ['32,768 segments', 'malformed_token', () => `${'a.'.repeat(MAX_TOKEN_BYTES / 2 - 1)}aa`],
    ['four segments', 'malformed_token', () => `${unsigned('{"alg":"ES256","kid":"k1"}', claimsJson())}.x`],
    ['padding in a part', 'malformed_token', () => `${b64('{"alg":"ES256","kid":"k1"}')}=.${b64(claimsJson())}.${badSignature}`],
    ['a 64 KB kid', 'key_not_found', () => filled((n) => unsigned(`{"alg":"ES256","kid":"${'k'.repeat(n)}"}`, claimsJson()))],
    ['a 64 KB typ', 'malformed_token', () => filled((n) => unsigned(`{"alg":"ES256","kid":"k1","typ":"${'a'.repeat(n)}"}`, claimsJson()))],
    ['a 64 KB alg', 'algorithm_not_allowed', () => filled((n) => unsigned(`{"alg":"${'A'.repeat(n)}","kid":"k1"}`, claimsJson()))],
  ])('%s: %s', async (_name, code, build) => {
    const { error, cpuMs } = await refusal(verifier().verifier, build())
    expect(error.code).toBe(code)
    expect(error.detail.length).toBeLessThan(400)
    expect(cpuMs).toBeLessThan(50)
  })
})

describe('what a refusal repeats back is bounded', () => {
  it('an unknown 6,000-character iss is cut in the detail and in WWW-Authenticate, saying so', async () => {
    const iss = `https://evil.example/${'a'.repeat(5_979)}`
    const { error } = await refusal(verifier().verifier, unsigned('{"alg":"ES256"}', `{"iss":"${iss}"}`))
    expect(error.code).toBe('issuer_unknown')
    expect(error.detail).toContain('…(truncated, 6000 chars)')
    expect(error.detail.length).toBeLessThan(400)
    expect(error.headers?.['www-authenticate']?.length).toBeLessThan(500)
  })

  it('an audience list the issuer signed is cut too', async () => {
    const token = await signedRaw(JSON.stringify({ iss: ISSUER, sub: 'svc', exp: exp(), aud: Array.from({ length: 500 }, (_, i) => `api://other-${i}`) }))
    const { error } = await refusal(verifier().verifier, token)
    expect(error.code).toBe('audience_mismatch')
    expect(error.detail).toMatch(/…\(truncated, \d+ chars\)/)
    expect(error.detail.length).toBeLessThan(400)
  })
})

describe('issuer drift', () => {
  it('is still named in the detail for every token, but warned about once a minute per configured issuer', async () => {
    let clock = 1_000_000
    const { verifier: v, logs } = verifier({ now: () => clock })
    const drifted = (i: number) => unsigned('{"alg":"ES256"}', `{"iss":"${ISSUER}${'/'.repeat(i)}"}`)
    for (let i = 1; i <= 50; i++) {
      const { error } = await refusal(v, drifted(i))
      expect(error.detail).toContain('only by a trailing slash')
    }
    expect((await refusal(v, unsigned('{"alg":"ES256"}', `{"iss":"${ISSUER.toUpperCase()}"}`))).error.detail).toContain('letter case')
    const warnings = () => logs.filter((line) => line.includes('"msg":"issuer drift"')).map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(warnings()).toHaveLength(1)
    expect(warnings()[0]).toMatchObject({ token_iss: `${ISSUER}/`, configured_issuer: ISSUER, suppressed_since_last_warning: 0 })
    clock += 60_000
    await refusal(v, drifted(1))
    expect(warnings()).toHaveLength(2)
    expect(warnings()[1]).toMatchObject({ suppressed_since_last_warning: 50 })
  })

  it('is not looked for in an iss longer than 256 characters', async () => {
    const { error } = await refusal(verifier().verifier, unsigned('{"alg":"ES256"}', `{"iss":"${ISSUER}${'/'.repeat(300)}"}`))
    expect(error.code).toBe('issuer_unknown')
    expect(error.detail).not.toContain('drift')
  })
})

describe('token types (issuers[].token_types)', () => {
  const mint = (typ: unknown) => new SignJWT({ iss: ISSUER, aud: 'api', sub: 'svc', exp: exp() }).setProtectedHeader({ alg: 'ES256', kid: 'k1', typ } as never).sign(privateKey)

  it.each(['at+jwt', 'AT+JWT', 'application/at+jwt', 'Application/AT+JWT', 'JWT', 'jwt', 'application/jwt', undefined])('by default, typ %s is accepted', async (typ) => {
    await expect(verifier().verifier.verify(`Bearer ${await mint(typ)}`, '')).resolves.toMatchObject({ sub: 'svc' })
  })

  it.each(['id_token+jwt', 'logout+jwt', 'application/logout+jwt', 'secevent+jwt', 'dpop+jwt', 'JOSE', 'at+jwt; x=y', 'text/at+jwt', '', 42, null, ['at+jwt']])('by default, typ %j is malformed_token', async (typ) => {
    const { error } = await refusal(verifier().verifier, await mint(typ))
    expect(error.code).toBe('malformed_token')
    expect(error.detail).toContain('token_types: at+jwt, JWT, untyped')
  })

  it('token_types: [at+jwt] accepts only RFC 9068 access tokens, refusing JWT and untyped tokens', async () => {
    const { verifier: v } = verifier({ issuerYaml: ', token_types: [at+jwt]' })
    await expect(v.verify(`Bearer ${await mint('at+jwt')}`, '')).resolves.toMatchObject({ sub: 'svc' })
    expect((await refusal(v, await mint('JWT'))).error.detail).toContain('"JWT" is not a kind of token issuer "corp" accepts')
    expect((await refusal(v, await mint(undefined))).error.detail).toContain('has no typ')
  })

  it('a typ named "untyped" is not the same as no typ', async () => {
    expect((await refusal(verifier().verifier, await mint('untyped'))).error.code).toBe('malformed_token')
  })

  it('an empty token_types list is a config error', () => {
    const loaded = loadConfigText(`issuers: [{ name: corp, issuer: "${ISSUER}", audiences: [api], token_types: [] }]\n`, 'test.yaml')
    expect(loaded.config).toBeUndefined()
    expect(loaded.diagnostics.map((d) => d.message).join('\n')).toContain('list at least one token type')
  })
})

describe('exp, nbf and iat that are not times (checkClaims)', () => {
  const { config } = loadConfigText(`issuers: [{ name: corp, issuer: "${ISSUER}", audiences: [api], clock_tolerance: 30s }]\n`, 'test.yaml')
  const issuer = jwtIssuers(config!)[0]!
  const nowMs = Date.UTC(2026, 0, 1)
  const now = nowMs / 1000
  const codeOf = (claims: Record<string, unknown>): string => {
    try {
      checkClaims({ iss: ISSUER, aud: 'api', sub: 'svc', exp: now + 300, ...claims }, issuer, nowMs)
      return 'ok'
    } catch (err) {
      expect(err).toBeInstanceOf(GatewayError)
      return (err as GatewayError).code
    }
  }

  it.each([
    [{ nbf: 1e300 }, 'malformed_token'],
    [{ iat: 1e300 }, 'malformed_token'],
    [{ exp: -1e300 }, 'malformed_token'],
    [{ exp: 1e308 }, 'malformed_token'],
    [{ exp: Number.POSITIVE_INFINITY }, 'malformed_token'],
    [{ nbf: Number.NEGATIVE_INFINITY }, 'malformed_token'],
    [{ exp: Number.NaN }, 'malformed_token'],
    [{ exp: 'NaN' }, 'malformed_token'],
    [{ iat: '1e300' }, 'malformed_token'],
    [{ exp: null }, 'malformed_token'],
    [{ nbf: true }, 'malformed_token'],
    [{ exp: [now + 300] }, 'malformed_token'],
    [{ exp: 8.64e12 + 1 }, 'malformed_token'],
    [{ exp: -0 }, 'token_expired'],
    [{ exp: -8.64e12 }, 'token_expired'],
    [{ nbf: 8.64e12 }, 'token_not_yet_valid'],
    [{ iat: 8.64e12 }, 'token_not_yet_valid'],
    [{ exp: 8.64e12 }, 'ok'],
    [{ nbf: -0, iat: -0 }, 'ok'],
    [{ exp: now - 29 }, 'ok'],
    [{ exp: now - 30 }, 'token_expired'],
  ])('%j: %s', (claims, code) => {
    expect(codeOf(claims)).toBe(code)
  })

  it('names the time in the detail, as far as dates reach', () => {
    expect(() => checkClaims({ iss: ISSUER, aud: 'api', exp: now + 300, nbf: 8.64e12 }, issuer, nowMs)).toThrow('+275760-09-13T00:00:00.000Z')
    expect(() => checkClaims({ iss: ISSUER, aud: 'api', exp: now + 300, nbf: 1e300 }, issuer, nowMs)).toThrow("nbf claim (1e+300) is not a time")
  })
})
