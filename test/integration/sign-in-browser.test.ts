// The whole sign-in in a real browser (Debian's chromium, driven by playwright-core, headless): open
// a protected page, sign in at the provider's login page, see the page, post a form (same origin:
// the CSRF check lets it through), sign out (the gateway's page posts; the provider asks too:
// RP-initiated logout), and be asked to sign in again. Screenshots of each step are saved in the
// test's temp dir (kept, and its path printed, when BOUNCER_KEEP_SCREENSHOTS is set).
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeAll, launchChromium, openPage, submitProviderLogin } from '../helpers/browser.ts'
import { closedPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, SCOPES_WITH_GROUPS, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let browser: Browser

/** The application behind the gateway: a page naming who X-Bouncer-Assertion says is calling, with a form. */
function dashboard(): Promise<TestUpstream> {
  return startUpstream((req, res, received) => {
    const assertion = String(received.headers['x-bouncer-assertion'] ?? '')
    const claims = JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString() || '{}') as { sub?: string; roles?: string[] }
    const saved = req.method === 'POST' ? '<p id="saved">Saved.</p>' : ''
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end(`<!doctype html><title>Dashboard</title><h1>Sales dashboard</h1><p id="who">Signed in as ${claims.sub ?? '?'} (${(claims.roles ?? []).join(', ')})</p>${saved}
<form method="post" action="/app/dashboard"><button id="save" type="submit">Save view</button></form><a id="sign-out" href="/.bouncer/sign_out">Sign out</a>`)
  }, { readBody: true })
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-sign-in-browser-'))
  upstream = await dashboard()
  const port = await closedPort()
  idp = await startSignInProvider(port, { people: [ALICE], afterSignOut: '/app/dashboard' })
  gateway = await startSignInGateway({
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, after_sign_out_path: '/app/dashboard' }),
    roles: [{ name: 'analysts', assumed_by: [{ issuer: 'sso', claims: { groups: 'analysts' } }], policies: ['dashboards'] }],
    policies: [{ name: 'dashboards', statements: [{ sid: 'Dashboards', effect: 'allow', actions: ['GET', 'POST'], routes: ['dashboards'] }] }],
    upstreams: [{ name: 'dash', url: upstream.url, identity_assertion: true }],
    routes: [{ id: 'dashboards', path: '/app/*', upstream: 'dash', accept: ['session'] }],
  }, { port })
  browser = await launchChromium()
}, 90_000)

afterAll(() => closeAll(browser, gateway, upstream, idp, async () => {
  if (process.env.BOUNCER_KEEP_SCREENSHOTS) console.log(`screenshots kept in ${dir}`)
  else await rm(dir, { recursive: true, force: true })
}))

describe('sign-in in a real browser', () => {
  it('opens a protected page, signs in, sees the page, posts a form, signs out, and is asked to sign in again', { timeout: 240_000 }, async () => {
    const { context, page } = await openPage(browser, { timeout: 60_000 }) // a loaded machine starts chromium slowly
    const shot = (name: string) => page.screenshot({ path: join(dir, `${name}.png`), fullPage: true })

    await page.goto(`${gateway.url}/app/dashboard?range=7d`)
    await page.waitForURL(new RegExp(`^${idp.issuer}/interaction/`))
    await expect.poll(() => page.locator('h1').textContent()).toBe('Sign in')
    await shot('1-provider-login')

    await submitProviderLogin(page, ALICE)
    await page.waitForURL(`${gateway.url}/app/dashboard?range=7d`)
    expect(await page.locator('#who').textContent()).toBe('Signed in as alice (analysts)')
    await shot('2-dashboard')

    const cookies = await context.cookies(gateway.url)
    const session = cookies.find((c) => c.name === 'bouncer_session')
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' })
    expect(await page.evaluate('document.cookie')).not.toContain('bouncer_session') // HttpOnly: no script reads it

    // A form on the page posts with the page's Origin: the CSRF check lets it through.
    await page.click('#save')
    await page.waitForSelector('#saved')
    await shot('3-saved')
    expect(upstream.received.some((r) => r.method === 'POST' && r.url === '/app/dashboard')).toBe(true)

    // The link opens the gateway's sign-out page; its button posts (a GET ends nothing: any site can send one).
    await page.click('#sign-out')
    await page.waitForURL(`${gateway.url}/.bouncer/sign_out`)
    await page.click('form[action="/.bouncer/sign_out"] button')
    await page.waitForURL(new RegExp(`^${idp.issuer}/session/end`))
    await shot('4-provider-sign-out')
    await page.click('#sign-out')
    // Back at the page, with no session: the provider asks to sign in again.
    await page.waitForURL(new RegExp(`^${idp.issuer}/interaction/`))
    await expect.poll(() => page.locator('h1').textContent()).toBe('Sign in')
    await shot('5-asked-again')
    expect((await context.cookies(gateway.url)).find((c) => c.name === 'bouncer_session')).toBeUndefined()

    expect((await readdir(dir)).filter((f) => f.endsWith('.png')).sort()).toEqual(['1-provider-login.png', '2-dashboard.png', '3-saved.png', '4-provider-sign-out.png', '5-asked-again.png'])
    await context.close()
  })
})
