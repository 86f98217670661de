// Found by the identity probe: a browser whose session cookie names no session (swept, revoked, a
// store emptied) opening a page was sent to sign in with the cookie left in place — the error carried
// one Set-Cookie, and the sign-in's state cookie took it. Each page load until it signed in sent the
// dead cookie again, and auth_failures counted each one, so a person who opened a few tabs (or came
// back a few times before signing in) was held back with 429. The redirect now clears the dead
// cookie and sets the state cookie: two Set-Cookie headers. In a real browser (chromium).
import { randomBytes } from 'node:crypto'
import type { Browser, Response } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { closeAll, launchChromium, openPage, submitProviderLogin } from '../helpers/browser.ts'
import { closedPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, analystsMayGet, SCOPES_WITH_GROUPS, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const BURST = 3
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let browser: Browser

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end('<!doctype html><title>Report</title><h1 id="report">Monthly report</h1>')
  })
  const port = await closedPort()
  idp = await startSignInProvider(port, { people: [ALICE] })
  gateway = await startSignInGateway({
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS }),
    ...analystsMayGet(),
    auth_failures: { rate: '1/h', burst: BURST },
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'app', accept: ['session'] }],
  }, { port })
  browser = await launchChromium()
}, 90_000)

afterAll(() => closeAll(browser, gateway, upstream, idp))

it('a page load with a cookie naming no session is sent to sign in with the cookie cleared, and is not held back for it', { timeout: 60_000 }, async () => {
  const { context, page } = await openPage(browser)
  await context.addCookies([{ name: 'bouncer_session', value: randomBytes(32).toString('base64url'), url: gateway.url }])
  const redirects: Response[] = []
  page.on('response', (res) => {
    if (res.url().startsWith(`${gateway.url}/reports/`)) redirects.push(res)
  })

  // More page loads than the burst: each goes to the provider's login, none is refused with 429.
  for (let i = 0; i <= BURST + 1; i++) {
    await page.goto(`${gateway.url}/reports/monthly`)
    expect(page.url()).toMatch(new RegExp(`^${idp.issuer}/interaction/`))
  }
  const first = redirects[0] as Response
  expect(first.status()).toBe(302)
  const cookies = (await first.headersArray()).filter((h) => h.name.toLowerCase() === 'set-cookie').map((h) => h.value)
  expect(cookies).toHaveLength(2)
  expect(cookies.find((c) => c.startsWith('bouncer_session='))).toMatch(/^bouncer_session=; Path=\/; Max-Age=0; HttpOnly/)
  expect(cookies.some((c) => !c.startsWith('bouncer_session=') && /Max-Age=[1-9]/.test(c))).toBe(true)
  expect((await context.cookies(gateway.url)).map((c) => c.name)).not.toContain('bouncer_session')

  // Signing in still works (the state cookie was set beside the clearing one), and lands on the page.
  await submitProviderLogin(page, ALICE)
  await page.waitForURL(`${gateway.url}/reports/monthly`)
  expect(await page.textContent('#report')).toBe('Monthly report')
  await context.close()
})
