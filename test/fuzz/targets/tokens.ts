// The JWS parser and the token verifier (src/identity/jws.ts, verify.ts), with real keys made by
// jose and jose's own in-process key set. Valid tokens are mutated every way an attacker would
// (bit flips in each part, swapped parts, other alg/kid/typ, embedded keys, re-signed by a foreign
// key, HMAC-signed with the public key, unsigned); whatever the verifier accepts must verify,
// independently (jose's compactVerify), under a configured public key, with the claims signed.
import { constants, createHmac, KeyObject, sign } from 'node:crypto'
import { Writable } from 'node:stream'
import fc from 'fast-check'
import { CompactSign, compactVerify, createLocalJWKSet, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose'
import { jwtIssuers, loadConfigText } from '../../../src/config/index.ts'
import { GatewayError, type ErrorCode } from '../../../src/errors/index.ts'
import type { Identity } from '../../../src/request/identity.ts'
import { createTokenVerifier, type TokenVerifier } from '../../../src/identity/index.ts'
import type { IssuerKeys } from '../../../src/identity/issuers.ts'
import { decodeCompactJwt } from '../../../src/identity/jws.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'
import { anyText, cpuMs, fuzzTarget, LARGE_INPUT_BYTES, LARGE_INPUT_CPU_MS, largeInput } from '../lib.ts'

const ISSUER = 'https://sso.fuzz.example'
const AUDIENCE = 'api'
const NOW_S = Date.UTC(2030, 0, 1) / 1000
const TOLERANCE_S = 30
const ALLOWED = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA']
const EVERY_ALG = [...ALLOWED, 'RS384', 'RS512', 'PS512', 'ES512', 'Ed25519', 'HS256', 'HS512', 'none', 'None', '', 'es256', 'RS256 ']

/** 401 answers, and 400 for a token in the query string; a local key set never makes a 503. */
const REFUSALS: ErrorCode[] = [
  'missing_token', 'malformed_token', 'token_expired', 'token_not_yet_valid', 'issuer_unknown', 'audience_mismatch',
  'algorithm_not_allowed', 'key_not_found', 'signature_invalid', 'claim_missing', 'bad_request',
]

interface FuzzKey {
  kid: string
  /** The algorithms this key signs under. */
  algs: string[]
  privateKey: KeyObject
  publicJwk: JWK
}

interface Keys {
  configured: FuzzKey[]
  foreign: FuzzKey[]
}

async function makeKey(kid: string, alg: string, algs: string[]): Promise<FuzzKey> {
  const pair = await generateKeyPair(alg, { extractable: true })
  return { kid, algs, privateKey: KeyObject.from(pair.privateKey), publicJwk: { ...(await exportJWK(pair.publicKey)), kid } }
}

/** RSA (for RS256 and PS256), P-256, P-384 and Ed25519: for the issuer, and a foreign set with the same kids. */
async function makeKeys(): Promise<Keys> {
  const set = (prefix: string) => Promise.all([
    makeKey(`${prefix}rsa`, 'RS256', ['RS256', 'PS256']),
    makeKey(`${prefix}p256`, 'ES256', ['ES256']),
    makeKey(`${prefix}p384`, 'ES384', ['ES384']),
    makeKey(`${prefix}ed`, 'EdDSA', ['EdDSA']),
  ])
  const [configured, foreign] = await Promise.all([set(''), set('')])
  // Some foreign keys reuse the issuer's kids (a token that names the right kid, signed by another key).
  foreign[1] = { ...foreign[1] as FuzzKey, kid: 'foreign-p256', publicJwk: { ...(foreign[1] as FuzzKey).publicJwk, kid: 'foreign-p256' } }
  return { configured, foreign }
}

const HASHES: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' }

/** Signs as an attacker could: any alg with any key, falling back to random-looking bytes when the pair cannot sign. */
function signature(alg: string, key: KeyObject | Buffer, input: string): string {
  const data = Buffer.from(input)
  const hash = HASHES[alg.slice(2)] ?? 'sha256'
  try {
    if (Buffer.isBuffer(key)) return createHmac(hash, key).update(data).digest('base64url')
    const type = key.asymmetricKeyType
    if (type === 'ed25519') return sign(null, data, key).toString('base64url')
    if (type === 'ec') return sign(hash, data, { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')
    if (alg.startsWith('PS')) return sign(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: parseInt(alg.slice(2), 10) / 8 }).toString('base64url')
    return sign(hash, data, key).toString('base64url')
  } catch {
    return createHmac('sha256', 'fallback').update(data).digest('base64url')
  }
}

const b64 = (text: string) => Buffer.from(text).toString('base64url')

// --- mutations -------------------------------------------------------------------------------

type Signer =
  | { by: 'keep' }
  | { by: 'configured' | 'foreign'; key: number }
  | { by: 'hmac-public'; key: number }
  | { by: 'none' }
  /** All zero bytes of a signature's length: ECDSA r = s = 0 (CVE-2022-21449, "psychic signatures"). */
  | { by: 'zeros'; bytes: number }

type Mutation =
  | { kind: 'flip-bit'; part: number; byte: number; bit: number }
  | { kind: 'char'; at: number; char: string }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'parts'; order: number[] }
  | { kind: 'header'; header: Record<string, unknown>; keepAlg: boolean; signer: Signer }
  | { kind: 'claims'; changes: Record<string, unknown>; signer: Signer }
  | { kind: 'raw-claims'; text: string; signer: Signer }
  | { kind: 'case'; upper: boolean }

const signer: fc.Arbitrary<Signer> = fc.oneof(
  fc.constant({ by: 'keep' as const }),
  fc.record({ by: fc.constantFrom('configured' as const, 'foreign' as const), key: fc.nat(3) }),
  fc.record({ by: fc.constant('hmac-public' as const), key: fc.nat(3) }),
  fc.constant({ by: 'none' as const }),
  fc.record({ by: fc.constant('zeros' as const), bytes: fc.constantFrom(0, 1, 64, 96, 132, 256) }),
)

const oddValue = fc.oneof(fc.constant(null), fc.integer(), fc.constant(['ES256']), fc.constant({}), fc.constant(true))
const headerFields = fc.record(
  {
    alg: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...EVERY_ALG) }, { weight: 1, arbitrary: anyText }, { weight: 1, arbitrary: oddValue }, { weight: 1, arbitrary: fc.constant(undefined) }),
    kid: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('rsa', 'p256', 'p384', 'ed', 'foreign-p256', '', 'rsa\u0000') }, { weight: 1, arbitrary: oddValue }, { weight: 1, arbitrary: fc.constant(undefined) }),
    typ: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('JWT', 'at+jwt', 'application/at+jwt', 'AT+JWT', 'id+jwt', 'logout+jwt', 'JWT ', '') }, { weight: 1, arbitrary: oddValue }, { weight: 1, arbitrary: fc.constant(undefined) }),
    jwk: fc.constant('FOREIGN_JWK'),
    jku: fc.constant('http://evil.example/keys'),
    x5u: fc.constant('http://evil.example/cert'),
    x5c: fc.constant(['MIIB']),
    crit: fc.constantFrom(['exp'], ['b64'], []),
    b64: fc.constant(false),
  },
  { requiredKeys: [] },
)

const timeValue = fc.oneof(
  fc.constantFrom(NOW_S + 300, NOW_S - 100, NOW_S - TOLERANCE_S, NOW_S - TOLERANCE_S + 1, NOW_S + TOLERANCE_S + 1, 0, -1, 1e13, 8.64e12, -8.64e12 - 1, 1.5, NOW_S + 0.5),
  fc.double(),
  fc.constantFrom('1700000000', null, [NOW_S + 300]),
  fc.constant(undefined),
)
const claimChanges = fc.record(
  {
    iss: fc.constantFrom(ISSUER, `${ISSUER}/`, ISSUER.toUpperCase(), 'https://evil.example', 42, undefined, null),
    aud: fc.constantFrom(AUDIENCE, [AUDIENCE], ['other', AUDIENCE], 'API', [], ['other'], null, undefined, 7),
    sub: fc.oneof(fc.string(), fc.constantFrom(undefined, null, 42, { a: 1 })),
    exp: timeValue,
    nbf: timeValue,
    iat: timeValue,
    client_id: fc.oneof(fc.string(), fc.constant(undefined)),
    extra: fc.jsonValue({ maxDepth: 3 }),
  },
  { requiredKeys: [] },
)
const rawClaims = fc.oneof(anyText, fc.json({ maxDepth: 3 }), fc.nat(40).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`), fc.constant(`{"iss":"${ISSUER}","aud":"api","sub":"s","exp":${NOW_S + 300},"exp":1}`))

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip-bit' as const), part: fc.nat(2), byte: fc.nat(600), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('char' as const), at: fc.nat(2000), char: fc.oneof(fc.constantFrom('A', 'B', '_', '-', '.', '=', '+', '/', ' ', '\t', '\n', '\u00e9'), fc.string({ minLength: 1, maxLength: 1 })) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(2000), text: fc.oneof(fc.constantFrom('.', '..', '=', 'AA', ' ', '.e30'), anyText) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(2000), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('parts' as const), order: fc.array(fc.nat(2), { minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('header' as const), header: headerFields, keepAlg: fc.boolean(), signer }),
  fc.record({ kind: fc.constant('claims' as const), changes: claimChanges, signer }),
  fc.record({ kind: fc.constant('raw-claims' as const), text: rawClaims, signer }),
  fc.record({ kind: fc.constant('case' as const), upper: fc.boolean() }),
)

const authorization = fc.constantFrom('Bearer ', 'Bearer ', 'Bearer ', 'bearer ', 'BEARER \t', 'Bearer  ', 'Basic ', '', 'Bearer')
const query = fc.constantFrom('', '', '', 'a=1', 'access_token=x', 'x=1&access_token=')

interface Context {
  keys: Keys
  verifier: TokenVerifier
  /** Valid tokens, signed by jose with each configured key, and the claims text each signed. */
  valid: Array<{ token: string; payload: string }>
}

async function makeContext(cacheEntries: number): Promise<Context> {
  const keys = await makeKeys()
  const yaml = `issuers: [{ name: fuzz, issuer: "${ISSUER}", audiences: [${AUDIENCE}], algorithms: [${ALLOWED.join(', ')}], clock_tolerance: ${TOLERANCE_S}s }]\n`
  const { config, diagnostics } = loadConfigText(yaml, 'fuzz.yaml', {})
  if (!config) throw new Error(`the fuzz issuer config is invalid: ${JSON.stringify(diagnostics)}`)
  const getKey = createLocalJWKSet({ keys: keys.configured.map((k) => k.publicJwk) })
  const issuerKeys: IssuerKeys = { name: 'fuzz', issuer: ISSUER, getKey, keySetOnceTried: async () => getKey, state: 'ready', hasKeys: true, attempted: true, lastError: null, close() {} }
  const logger = createLogger({ level: 'silent', destination: new Writable({ write: (_chunk, _encoding, done) => done() }) })
  const verifier = createTokenVerifier({
    issuers: jwtIssuers(config),
    keys: new Map([['fuzz', issuerKeys]]),
    maxTokenBytes: LARGE_INPUT_BYTES,
    cacheEntries,
    logger,
    now: () => NOW_S * 1000,
  })
  const valid: Context['valid'] = []
  for (const key of keys.configured) {
    for (const alg of key.algs) {
      for (const [typ, withKid] of [['at+jwt', true], [undefined, false]] as const) {
        const payload = JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: `svc-${key.kid}`, exp: NOW_S + 300, iat: NOW_S, scope: 'read' })
        const header = { alg, ...(withKid ? { kid: key.kid } : {}), ...(typ ? { typ } : {}) }
        const privateKey = await importJWK(key.privateKey.export({ format: 'jwk' }) as JWK, alg)
        valid.push({ token: await new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader(header).sign(privateKey), payload })
      }
    }
  }
  return { keys, verifier, valid }
}

/** Applies one mutation; records every claims text it signs with a configured key. */
function mutate(token: string, m: Mutation, keys: Keys, signedByIssuer: Set<string>): string {
  const parts = token.split('.')
  const [header = '', payload = ''] = parts
  const resign = (h: string, p: string, s: Signer): string => {
    const input = `${h}.${p}`
    switch (s.by) {
      case 'keep': return `${input}.${parts[2] ?? ''}`
      case 'none': return `${input}.`
      case 'zeros': return `${input}.${Buffer.alloc(s.bytes).toString('base64url')}`
      case 'hmac-public': {
        // The classic algorithm confusion: the issuer's public key used as an HMAC secret.
        const key = keys.configured[s.key] as FuzzKey
        return `${input}.${signature(algOf(h), Buffer.from(JSON.stringify(key.publicJwk)), input)}`
      }
      default: {
        const key = (s.by === 'configured' ? keys.configured : keys.foreign)[s.key] as FuzzKey
        if (s.by === 'configured') signedByIssuer.add(Buffer.from(p, 'base64url').toString())
        return `${input}.${signature(algOf(h), key.privateKey, input)}`
      }
    }
  }
  switch (m.kind) {
    case 'flip-bit': {
      const bytes = Buffer.from(parts[m.part] ?? '', 'base64url')
      if (bytes.length === 0) return token
      const at = m.byte % bytes.length
      bytes[at] = (bytes[at] as number) ^ (1 << m.bit)
      parts[m.part] = bytes.toString('base64url')
      return parts.join('.')
    }
    case 'char': {
      const at = m.at % (token.length + 1)
      return `${token.slice(0, at)}${m.char}${token.slice(at + 1)}`
    }
    case 'insert': {
      const at = m.at % (token.length + 1)
      return `${token.slice(0, at)}${m.text}${token.slice(at)}`
    }
    case 'delete': {
      const at = m.at % (token.length + 1)
      return `${token.slice(0, at)}${token.slice(at + m.count)}`
    }
    case 'parts':
      return m.order.map((i) => parts[i] ?? '').join('.')
    case 'header': {
      const fields: Record<string, unknown> = { ...jsonOf(header), ...m.header }
      if (m.keepAlg) fields.alg = jsonOf(header).alg
      if (fields.jwk === 'FOREIGN_JWK') fields.jwk = (keys.foreign[1] as FuzzKey).publicJwk
      return resign(b64(JSON.stringify(fields)), payload, m.signer)
    }
    case 'claims':
      return resign(header, b64(JSON.stringify({ ...jsonOf(payload), ...m.changes })), m.signer)
    case 'raw-claims':
      return resign(header, b64(m.text), m.signer)
    case 'case':
      return m.upper ? token.toUpperCase() : token.toLowerCase()
  }
}

function jsonOf(part: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString())
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {}
  } catch {
    return {}
  }
}

function algOf(encodedHeader: string): string {
  const alg = jsonOf(encodedHeader).alg
  return typeof alg === 'string' ? alg : 'RS256'
}

/** jose, on its own, with each configured public key: the claims text when one verifies the token. */
async function verifiedByJose(token: string, keys: Keys): Promise<string | undefined> {
  const alg = jsonOf(token.split('.')[0] ?? '').alg
  if (typeof alg !== 'string') return undefined
  for (const key of keys.configured) {
    let publicKey
    try {
      publicKey = await importJWK(key.publicJwk, alg)
    } catch {
      continue
    }
    try {
      const { payload } = await compactVerify(token, publicKey, { algorithms: [alg] })
      return new TextDecoder().decode(payload)
    } catch {
      continue
    }
  }
  return undefined
}

async function verifyOrRefuse(verifier: TokenVerifier, authorization: string, query: string): Promise<Identity | GatewayError> {
  try {
    return await verifier.verify(authorization, query)
  } catch (err) {
    if (!(err instanceof GatewayError)) throw new Error(`not a GatewayError escaped: ${String(err)}`, { cause: err })
    if (!REFUSALS.includes(err.code)) throw new Error(`unexpected refusal ${err.code}: ${err.detail}`, { cause: err })
    return err
  }
}

/** The token in an Authorization header as RFC 6750 §2.1 reads it (the verifier's reading is under test too). */
function bearerOf(authorization: string): string {
  const token = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization)?.[1]
  if (token === undefined) throw new Error(`accepted an Authorization header that is not "Bearer <token>": ${JSON.stringify(authorization.slice(0, 80))}`)
  return token
}

/** What acceptance implies: a configured key signed exactly these claims, and the issuer's rules hold. */
async function checkAccepted(token: string, identity: Identity, context: Context, signedByIssuer: ReadonlySet<string>): Promise<void> {
  const payload = await verifiedByJose(token, context.keys)
  if (payload === undefined) throw new Error('accepted a token that no configured key signed (jose does not verify it)')
  if (!signedByIssuer.has(payload)) throw new Error(`accepted claims the issuer never signed: ${payload}`)
  if (JSON.stringify(identity.claims) !== JSON.stringify(JSON.parse(payload))) throw new Error('the identity\'s claims are not the signed claims')
  const decoded = decodeCompactJwt(token)
  if (!decoded) throw new Error('accepted a token the decoder refuses')
  const { header, claims } = decoded
  if (!ALLOWED.includes(header.alg as string)) throw new Error(`accepted alg ${String(header.alg)}`)
  for (const name of ['jwk', 'jku', 'x5u', 'x5c', 'crit']) if (name in header) throw new Error(`accepted a header with ${name}`)
  if (header.typ !== undefined && !['jwt', 'at+jwt', 'application/jwt', 'application/at+jwt'].includes(String(header.typ).toLowerCase())) {
    throw new Error(`accepted typ ${String(header.typ)}`)
  }
  if (claims.iss !== ISSUER) throw new Error('accepted another issuer')
  if (typeof claims.exp !== 'number' || !(claims.exp > NOW_S - TOLERANCE_S)) throw new Error(`accepted exp ${String(claims.exp)}`)
  for (const name of ['nbf', 'iat'] as const) {
    const value = claims[name]
    if (value !== undefined && (typeof value !== 'number' || value > NOW_S + TOLERANCE_S)) throw new Error(`accepted ${name} ${String(value)}`)
  }
  const aud = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : []
  if (!aud.includes(AUDIENCE)) throw new Error(`accepted aud ${JSON.stringify(claims.aud)}`)
  if (typeof identity.sub !== 'string' || identity.sub === '') throw new Error('accepted a token that names no principal')
}

export const mutatedTokens = fuzzTarget({
  name: 'tokens.mutated',
  longRuns: 60_000,
  property: async () => {
    const context = await makeContext(1_000)
    return fc.asyncProperty(
      fc.nat(context.valid.length - 1),
      fc.array(mutation, { maxLength: 3 }),
      authorization,
      query,
      async (which, mutations, scheme, queryString) => {
        const base = context.valid[which] as Context['valid'][number]
        const signedByIssuer = new Set([base.payload])
        let token = base.token
        for (const m of mutations) token = mutate(token, m, context.keys, signedByIssuer)
        const authorizationHeader = `${scheme}${token}`
        const result = await verifyOrRefuse(context.verifier, authorizationHeader, queryString)
        if (result instanceof GatewayError) {
          if (mutations.length === 0 && /^bearer[ \t]+$/i.test(scheme) && !queryString.includes('access_token=')) {
            throw new Error(`a valid token was refused: ${result.code} ${result.detail}`)
          }
          return
        }
        await checkAccepted(bearerOf(authorizationHeader), result, context, signedByIssuer)
      },
    )
  },
})

/** Arbitrary text as a token: only 401 answers, and decodeCompactJwt never throws. */
export const arbitraryTokens = fuzzTarget({
  name: 'tokens.arbitrary',
  longRuns: 150_000,
  property: async () => {
    const context = await makeContext(0)
    const part = fc.oneof(
      anyText,
      fc.json({ maxDepth: 4 }).map(b64),
      fc.constantFrom('', 'e30', 'eyJhbGciOiJub25lIn0', 'W10', 'bnVsbA', 'AA', 'A', '_-', '====', '+/'),
    )
    const token = fc.oneof(
      fc.array(part, { minLength: 1, maxLength: 5 }).map((parts) => parts.join('.')),
      anyText,
    )
    return fc.asyncProperty(token, authorization, async (text, scheme) => {
      decodeCompactJwt(text)
      const result = await verifyOrRefuse(context.verifier, `${scheme}${text}`, '')
      if (!(result instanceof GatewayError)) await checkAccepted(bearerOf(`${scheme}${text}`), result, context, new Set())
    })
  },
})

export const largeTokens = fuzzTarget({
  name: 'tokens.large',
  longRuns: 2_000,
  shortScale: 0.05,
  property: async () => {
    const context = await makeContext(0)
    const piece = fc.constantFrom('[', ']', '{', '}', '"', '\\', '/', '.', 'a', ':', ',', '\\"', '\\\\', 'e30', 'A', '=', ' ', '\t', '&', 'access_token')
    return fc.asyncProperty(largeInput(piece, LARGE_INPUT_BYTES - 200), fc.constantFrom('raw', 'header', 'claims', 'iss', 'kid', 'scheme'), async (text, where) => {
      const header = (h: string) => b64(h).slice(0, LARGE_INPUT_BYTES - 300)
      const token =
        where === 'raw' ? text :
        where === 'header' ? `${header(`{"alg":"ES256","x":${text}}`)}.${b64('{}')}.AA` :
        where === 'claims' ? `${b64('{"alg":"ES256","kid":"p256"}')}.${header(`{"iss":"${ISSUER}","x":${text}}`)}.AA` :
        where === 'iss' ? `${b64('{"alg":"ES256","kid":"p256"}')}.${header(`{"iss":"${ISSUER}${text}"}`)}.AA` :
        `${header(`{"alg":"ES256","kid":"${text}"}`)}.${b64(`{"iss":"${ISSUER}","aud":"api","exp":${NOW_S + 60}}`)}.AA`
      const before = process.cpuUsage()
      const authorization = where === 'scheme' ? `Bearer${text.replace(/[a-z]/g, ' ')}\t` : `Bearer ${token.slice(0, LARGE_INPUT_BYTES)}`
      const result = await verifyOrRefuse(context.verifier, authorization, where === 'scheme' ? `${text}&access_token=` : '')
      const used = process.cpuUsage(before)
      const ms = cpuMs(used)
      if (ms > LARGE_INPUT_CPU_MS) throw new Error(`verifying a 64 KB token (${where}) took ${ms.toFixed(0)} ms of CPU`)
      if (!(result instanceof GatewayError)) throw new Error('accepted an unsigned token')
    })
  },
})
