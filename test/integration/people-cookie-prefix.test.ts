// A `__Host-` session cookie (docs/people.md recommends one) over TLS, in a real browser: every
// cookie the sign-in sets must obey its name's prefix (RFC 6265bis §4.1.3: `__Host-` is Secure,
// Path=/ and has no Domain; `__Secure-` is Secure), or the browser drops it. The state cookie was
// `__Host-bouncer_session_state` with Path=/.bouncer/callback: Chromium dropped it, and every
// sign-in ended in 400 "state does not match" (a probe).
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeAll, launchChromium, openPage, submitProviderLogin } from '../helpers/browser.ts'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, SCOPES_WITH_GROUPS, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const COOKIE = '__Host-bouncer_session'

let pki: TestPki
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let browser: Browser

beforeAll(async () => {
  pki = createPki()
  upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end('<!doctype html><title>Dashboard</title><h1 id="dash">Sales dashboard</h1>')
  })
  const held = await heldPort()
  const origin = `https://127.0.0.1:${held.port}`
  idp = await startSignInProvider(origin, { people: [ALICE], afterSignOut: '/' })
  gateway = await startSignInGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key } },
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, cookie: { name: COOKIE } }),
    roles: [{ name: 'analysts', assumed_by: [{ issuer: 'sso', claims: { groups: 'analysts' } }], policies: ['dashboards'] }],
    policies: [{ name: 'dashboards', statements: [{ sid: 'Dashboards', effect: 'allow', actions: ['GET', 'POST'], routes: ['dashboards'] }] }],
    upstreams: [{ name: 'dash', url: upstream.url }],
    routes: [{ id: 'dashboards', path: '/app/*', upstream: 'dash', accept: ['session'] }],
  }, { port: held })
  expect(gateway.url).toBe(origin)
  browser = await launchChromium()
}, 90_000)

afterAll(() => closeAll(browser, gateway, upstream, idp, async () => pki?.close()))

/** What RFC 6265bis §4.1.3 asks of a cookie by its name's prefix; empty when the browser keeps it. */
function prefixViolations(setCookie: string): string[] {
  const [pair = '', ...attributes] = setCookie.split(';').map((part) => part.trim())
  const name = pair.slice(0, pair.indexOf('=')).toLowerCase()
  const attribute = (key: string) => attributes.find((a) => a.toLowerCase().split('=')[0] === key)
  const problems: string[] = []
  if ((name.startsWith('__host-') || name.startsWith('__secure-')) && attribute('secure') === undefined) problems.push(`${name}: not Secure`)
  if (name.startsWith('__host-')) {
    if (attribute('path')?.slice(5) !== '/') problems.push(`${name}: ${attribute('path') ?? 'no Path'}`)
    if (attribute('domain') !== undefined) problems.push(`${name}: has a Domain`)
  }
  return problems
}

describe('a __Host- session cookie over TLS', { timeout: 180_000 }, () => {
  it('a real browser signs in and out, and every cookie the gateway sets obeys its prefix', async () => {
    const { context, page } = await openPage(browser, { ignoreHTTPSErrors: true, timeout: 60_000 })
    const set: string[] = []
    page.on('response', (response) => {
      if (!response.url().startsWith(gateway.url)) return
      void response.headerValues('set-cookie').then((values) => set.push(...values.flatMap((v) => v.split('\n'))))
    })
    await page.goto(`${gateway.url}/app/dashboard`)
    await page.waitForURL(new RegExp(`^${idp.issuer}/interaction/`))
    await submitProviderLogin(page, ALICE)
    await page.waitForURL(`${gateway.url}/app/dashboard`)
    expect(await page.locator('#dash').textContent()).toBe('Sales dashboard')
    const cookies = await context.cookies(gateway.url)
    expect(cookies.find((c) => c.name === COOKIE)).toMatchObject({ secure: true, path: '/', httpOnly: true })
    expect(cookies.find((c) => c.name === `${COOKIE}_state`)).toBeUndefined() // cleared at the callback

    await page.goto(`${gateway.url}/.bouncer/sign_out`)
    await page.click('form[action="/.bouncer/sign_out"] button')
    await page.waitForURL(new RegExp(`^${idp.issuer}/session/end`))
    expect((await context.cookies(gateway.url)).find((c) => c.name === COOKIE)).toBeUndefined()

    // The state cookie, the session cookie, and both cleared: four, each as its prefix asks.
    await expect.poll(() => set.length).toBeGreaterThanOrEqual(4)
    expect(set.map((line) => line.split('=')[0]).sort()).toEqual([COOKIE, COOKIE, `${COOKIE}_state`, `${COOKIE}_state`])
    expect(set.flatMap(prefixViolations)).toEqual([])
    await context.close()
  })
})
