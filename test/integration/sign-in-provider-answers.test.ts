// Found by an adversarial probe (helper "browser"): a provider's answer that fails the sign-in's
// checks was answered as something else. An ID token past its exp (the provider's clock off) or
// not yet valid (nbf) was 503 identity_provider_unavailable, "cannot be reached right now; try
// again shortly", with Retry-After: openid-client's error was read by its wording, and "JWT
// timestamp claim value failed validation" named no refusal. One signed with a key the provider
// does not hold was 401 signature_invalid with `WWW-Authenticate: Bearer error="invalid_token"`,
// for a token the browser never sent (the bearer verifier's refusal passed on as it was); at a
// refresh the person's request got that 401. An algorithm not allowed (alg none, HS256 keyed with
// the public key), another audience or issuer: "its code is invalid, expired or already used (a
// replayed callback)". Each is now 400 naming the check that failed. The real provider
// (oidc-provider); its token answers rewritten in flight, as a hostile or misconfigured one would send.
import { createPublicKey } from 'node:crypto'
import { decodeJwt, generateKeyPair, importJWK, SignJWT } from 'jose'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar, submitLogin, type CookieJarClient, type Reply } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, analystsMayGet, SCOPES_WITH_GROUPS, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { people: [ALICE] })
  gateway = await startSignInGateway({
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session: { store: 'memory' } }),
    ...analystsMayGet(),
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [{ id: 'people', path: '/people/*', upstream: 'app', accept: ['session', 'bearer'] }],
  }, { port: held })
}, 60_000)

afterAll(() => closeAll(gateway, upstream, idp))

beforeEach(() => {
  idp.rewriteTokens = null
})

/** Signs in at the provider up to its redirect back, not followed: the browser holding its state, and the callback URL. */
async function callbackOf(): Promise<{ client: CookieJarClient; callback: string }> {
  const client = cookieJar()
  const toLogin = await client.follow(`${gateway.url}/people/start`)
  const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
  const stopped = await client.follow(loggedIn.location!, { stop: (url) => url.startsWith(`${gateway.url}/.bouncer/callback`) })
  return { client, callback: stopped.url }
}

/** The provider's ID token, its claims changed and signed again with its own key (or `key`), its header as given. */
async function resigned(idToken: string, claims: Record<string, unknown>, options: { key?: Parameters<SignJWT['sign']>[0]; alg?: string } = {}): Promise<string> {
  const own = idp.keys.find((k) => k.alg === 'ES256')!
  const key = options.key ?? (await importJWK(own.privateJwk, 'ES256'))
  return new SignJWT({ ...decodeJwt(idToken), ...claims }).setProtectedHeader({ alg: options.alg ?? 'ES256', kid: own.kid }).sign(key)
}

/** The callback's answer when the provider's token answer carries `idToken(genuine)` instead of its own. */
async function callbackWith(idToken: (genuine: string) => Promise<string> | string): Promise<Reply> {
  const { client, callback } = await callbackOf()
  idp.rewriteTokens = async (answer) => ({ ...answer, id_token: await idToken(answer.id_token as string) })
  return client.request(callback)
}

function problem(reply: Reply): { code: string; detail: string } {
  return JSON.parse(reply.body) as { code: string; detail: string }
}

describe('a provider\'s ID token that fails a check, at the callback', { timeout: 120_000 }, () => {
  it('expired or not yet valid (the provider\'s clock off): 400 naming the claim, not 503 "cannot be reached, try again"', async () => {
    const now = Math.floor(Date.now() / 1000)
    const expired = await callbackWith((t) => resigned(t, { iat: now - 7_200, exp: now - 3_600 }))
    expect(expired.status).toBe(400)
    expect(expired.headers['retry-after']).toBeUndefined()
    expect(problem(expired)).toMatchObject({ code: 'bad_request', detail: expect.stringMatching(/^The provider's answer fails the sign-in's checks: unexpected JWT "exp" \(expiration time\) claim value/) })

    const early = await callbackWith((t) => resigned(t, { nbf: now + 3_600 }))
    expect(early.status).toBe(400)
    expect(problem(early).detail).toContain('"nbf" (not before)')
  })

  it('signed with a key the provider does not hold (under its kid): 400, with no Bearer challenge for a token the browser never sent', async () => {
    const { privateKey } = await generateKeyPair('ES256')
    const forged = await callbackWith((t) => resigned(t, {}, { key: privateKey }))
    expect(forged.status).toBe(400)
    expect(forged.headers['www-authenticate']).toBeUndefined()
    expect(problem(forged)).toEqual(expect.objectContaining({ code: 'bad_request', detail: expect.stringContaining('signature does not verify') }))
    expect(forged.headers['set-cookie']).toBeUndefined() // no session
  })

  it('alg none, or HS256 keyed with the provider\'s public key, or another audience: 400 saying so, not "a replayed callback"', async () => {
    const none = await callbackWith((t) => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${t.split('.')[1]}.`)
    expect(problem(none).detail).toContain('unexpected JWT "alg" header parameter')
    const rsa = idp.keys.find((k) => k.alg === 'RS256')!
    const publicPem = createPublicKey({ key: rsa.publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string
    const confused = await callbackWith((t) => resigned(t, {}, { key: new TextEncoder().encode(publicPem), alg: 'HS256' }))
    expect(problem(confused).detail).toContain('unexpected JWT "alg" header parameter')
    const elsewhere = await callbackWith((t) => resigned(t, { aud: 'another-client' }))
    expect(problem(elsewhere).detail).toContain('"aud" (audience)')
    for (const reply of [none, confused, elsewhere]) {
      expect(reply.status).toBe(400)
      expect(problem(reply).detail).not.toContain('already used')
    }
  })

  it('the provider\'s own answer still signs in, and a replayed code is still told as one', async () => {
    const { client, callback } = await callbackOf()
    const state = client.cookies(gateway.url).bouncer_session_state!
    expect((await client.request(callback)).status).toBe(302)
    client.setCookie(gateway.url, 'bouncer_session_state', state) // kept by whoever replays the callback
    const replayed = await client.request(callback)
    expect(replayed.status).toBe(400)
    expect(problem(replayed).detail).toContain('already used (a replayed callback)')
  })
})

describe('a provider that cannot be reached at the callback', { timeout: 60_000 }, () => {
  // Found by the same probe: the 503 said "cannot be reached right now", and nothing said why.
  it('is 503 identity_provider_unavailable, and the gateway logs why (the connection cut, here)', async () => {
    const { client, callback } = await callbackOf()
    idp.rewriteTokens = () => {
      throw new Error('the connection is cut before any answer')
    }
    const cut = await client.request(callback)
    expect(cut.status).toBe(503)
    expect(problem(cut).code).toBe('identity_provider_unavailable')
    const logged = gateway.logs.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.msg === 'sign-in provider cannot be reached')
    expect(logged).toMatchObject({ level: 'warn', issuer: 'sso', step: 'code exchange', err: { message: 'fetch failed', cause: { message: 'other side closed' } } })
  })
})

describe('at a refresh', { timeout: 120_000 }, () => {
  it('a refreshed ID token signed with a key the provider does not hold ends the session, saying why, not 401 signature_invalid', async () => {
    const { client, callback } = await callbackOf()
    expect((await client.request(callback)).status).toBe(302)
    const value = client.cookies(gateway.url).bouncer_session!
    const store = gateway.state.runtime.signIn!.store
    const record = (await store.get(sessionId(value)))!
    await store.update({ ...record, refreshAt: Date.now() - 1_000 }) // its ID token due for a refresh now
    const { privateKey } = await generateKeyPair('ES256')
    idp.rewriteTokens = async (answer) => ({ ...answer, id_token: await resigned(answer.id_token as string, {}, { key: privateKey }) })
    const refused = await client.request(`${gateway.url}/people/report`, { html: false })
    expect(refused.status).toBe(401)
    expect(refused.headers['www-authenticate']).toBe('Bearer') // the route's challenge, not error="invalid_token" about a token never sent
    expect(problem(refused)).toEqual(expect.objectContaining({ code: 'session_expired', detail: expect.stringContaining('signature does not verify') }))
    // The session has ended: the cookie asks the provider nothing more.
    expect(await store.get(sessionId(value))).toBeUndefined()
    const asked = idp.tokenRequests
    const again = await client.request(`${gateway.url}/people/report`, { html: false })
    expect(problem(again).code).toBe('session_expired')
    expect(idp.tokenRequests).toBe(asked)
  })
})
