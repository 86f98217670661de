// An aud that is neither a string nor an array of strings (RFC 7519 §4.1.3) is a malformed token.
// Read as a list of anything, `[1, "api"]` was taken as a token for `api`, and `[["api"]]` refused
// with the self-contradicting "The token is for audience api, not api." (a probe).
import { CompactSign, createLocalJWKSet, exportJWK, generateKeyPair, type CryptoKey } from 'jose'
import { Writable } from 'node:stream'
import { beforeAll, describe, expect, it } from 'vitest'
import { jwtIssuers, loadConfigText } from '../../../src/config/index.ts'
import { GatewayError } from '../../../src/errors/index.ts'
import { checkClaims, createTokenVerifier, type TokenVerifier } from '../../../src/identity/index.ts'
import type { IssuerKeys } from '../../../src/identity/issuers.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

const ISSUER = 'https://idn3-aud.example.com'
let privateKey: CryptoKey
let verifier: TokenVerifier

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true })
  privateKey = pair.privateKey
  const getKey = createLocalJWKSet({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }] })
  const keys = { name: 'corp', issuer: ISSUER, getKey, state: 'ready', hasKeys: true, attempted: true, lastError: null, keySetOnceTried: async () => getKey, close() {} } as IssuerKeys
  const { config } = loadConfigText(`issuers: [{ name: corp, issuer: "${ISSUER}", audiences: [api], algorithms: [ES256] }]\n`, 'test.yaml')
  const logger = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, done) => done() }) })
  verifier = createTokenVerifier({ issuers: jwtIssuers(config!), keys: new Map([['corp', keys]]), maxTokenBytes: 65_536, cacheEntries: 100, logger })
})

async function answer(aud: unknown): Promise<string> {
  const claims = { iss: ISSUER, sub: 'svc', exp: Math.floor(Date.now() / 1000) + 300, ...(aud === undefined ? {} : { aud }) }
  const token = await new CompactSign(new TextEncoder().encode(JSON.stringify(claims))).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(privateKey)
  return verifier.verify(`Bearer ${token}`, '').then(() => 'accepted', (err: unknown) => (err instanceof GatewayError ? err.code : String(err)))
}

describe('aud members', () => {
  it('takes a string or an array of strings naming an accepted audience', async () => {
    expect(await answer('api')).toBe('accepted')
    expect(await answer(['other', 'api'])).toBe('accepted')
    expect(await answer(['other'])).toBe('audience_mismatch')
    expect(await answer([])).toBe('audience_mismatch')
  })

  it('refuses any other aud as a malformed token', async () => {
    for (const aud of [[1, 'api'], [['api']], { api: true }, 7, ['api', null]]) expect(await answer(aud), JSON.stringify(aud)).toBe('malformed_token')
  })

  it('explain\'s claim checks say the same', () => {
    const { config } = loadConfigText(`issuers: [{ name: corp, issuer: "${ISSUER}", audiences: [api], algorithms: [ES256] }]\n`, 'test.yaml')
    const issuer = jwtIssuers(config!)[0]!
    expect(() => checkClaims({ iss: ISSUER, sub: 'svc', aud: [['api']] as unknown as string[] }, issuer, Date.now(), true)).toThrow(/neither a string nor an array of strings/)
  })
})
