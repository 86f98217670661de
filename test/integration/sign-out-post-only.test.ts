// Found by an adversarial probe (helper): GET /.bouncer/sign_out ended the session with no Origin check, so any site could sign people out with a link or an image (the Lax session cookie goes along); only a POST from the gateway's own pages ends it now, a GET answers a page with a button.
import { randomBytes } from 'node:crypto'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { signInConfig, startSignInGateway, startSignInProvider, UNUSED_ORIGIN } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  upstream = await startUpstream()
  idp = await startSignInProvider(UNUSED_ORIGIN)
  gateway = await startSignInGateway({
    ...signInConfig(idp),
    roles: [{ name: 'people', assumed_by: [{ issuer: 'sso', claims: { groups: 'staff' } }], policies: ['all'] }],
    policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', accept: ['session'] }],
  })
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
})

/** A signed-in person's session as the callback writes it; its cookie. */
async function session(subject: string): Promise<string> {
  const value = randomBytes(32).toString('base64url')
  const now = Date.now()
  await gateway.state.runtime.signIn!.store.put({
    id: sessionId(value), issuer: 'sso', subject, claims: { sub: subject, groups: ['staff'] },
    createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000, refreshAt: null, sealed: null, audience: 'gateway',
  })
  return `bouncer_session=${value}`
}

async function signOut(method: string, headers: Record<string, string>) {
  const res = await request(`${gateway.url}/.bouncer/sign_out`, { method: method as 'GET', headers })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

async function opens(cookie: string): Promise<number> {
  const res = await request(`${gateway.url}/app/x`, { headers: { cookie } })
  await res.body.dump()
  return res.statusCode
}

describe('sign-out', () => {
  it('a GET (a link or an image on any site) ends nothing: it answers a page whose button posts', async () => {
    const cookie = await session('ann')
    const page = await signOut('GET', { cookie, accept: 'text/html', referer: 'https://evil.example/' })
    expect(page.status).toBe(200)
    expect(page.headers['content-type']).toMatch(/^text\/html/)
    expect(page.headers['set-cookie']).toBeUndefined()
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'")
    expect(page.body).toContain('<form method="post" action="/.bouncer/sign_out">')
    const head = await signOut('HEAD', { cookie })
    expect(head.status).toBe(200)
    expect(await opens(cookie)).toBe(200)
  })

  it('a POST from another site, or with no Origin, is refused and ends nothing', async () => {
    const cookie = await session('ben')
    const origins: Record<string, string>[] = [{ origin: 'https://evil.example' }, { origin: 'null' }, {}]
    for (const headers of origins) {
      const refused = await signOut('POST', { cookie, ...headers })
      expect(refused.status).toBe(403)
      expect(JSON.parse(refused.body)).toMatchObject({ code: 'cors_origin_denied' })
    }
    expect(await opens(cookie)).toBe(200)
  })

  it('a POST from the gateway\'s own page ends the session and clears the cookie', async () => {
    const cookie = await session('cal')
    const out = await signOut('POST', { cookie, origin: gateway.url })
    expect(out.status).toBe(302)
    expect(String(out.headers['set-cookie'])).toMatch(/^bouncer_session=;/)
    expect(await opens(cookie)).toBe(401)
  })

  it('other methods are answered 405 with the ones it takes', async () => {
    const res = await signOut('PUT', { cookie: await session('dee'), origin: gateway.url })
    expect(res.status).toBe(405)
    expect(res.headers.allow).toBe('GET, HEAD, POST')
  })
})
