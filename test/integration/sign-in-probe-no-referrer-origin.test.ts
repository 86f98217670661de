// Found by the people probe: an application behind the gateway whose pages say
// `Referrer-Policy: no-referrer` (helmet's default for Express apps, and a common hardening
// header) could not post anything. Browsers then send `Origin: null` with a same-origin POST
// (Fetch: a request's Origin follows its referrer policy), and the gateway's CSRF check refused it:
// 403 cors_origin_denied on every form post and fetch POST of the signed-in person, from the
// application's own pages. The browser says where the request came from in `Sec-Fetch-Site`, which no
// page can set: `same-origin` is now let through when Origin is null or absent (as Go's
// CrossOriginProtection does); a page of another origin, the same site or not, is still refused.
// A real browser (Debian's chromium), provider, gateway and application.
import { mkdtemp, rm } from 'node:fs/promises'
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
/** What the application received: `METHOD path`. */
const received: string[] = []

/** An application whose pages say Referrer-Policy: no-referrer, with a form and a fetch POST to itself; `target` is where they post. */
function page(target: string): string {
  return `<!doctype html><title>App</title><h1>App</h1>
<form method="post" action="${target}/app/save"><input type="hidden" name="view" value="7d"><button id="save" type="submit">Save</button></form>
<button id="fetch" onclick="fetch('${target}/app/save', { method: 'POST', body: 'view=7d', credentials: 'include' }).then((r) => { document.getElementById('status').textContent = String(r.status) }, (e) => { document.getElementById('status').textContent = 'failed' })">Fetch</button>
<p id="status"></p>`
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-no-referrer-'))
  const port = await closedPort()
  const gatewayOrigin = `http://127.0.0.1:${port}`
  upstream = await startUpstream((req, res) => {
    received.push(`${req.method} ${req.url}`)
    const headers = { 'content-type': 'text/html; charset=utf-8', 'referrer-policy': 'no-referrer' }
    if (req.method === 'POST') return void res.writeHead(200, headers).end('<!doctype html><p id="saved">Saved.</p>')
    // Through the gateway, the app's own page posts to its own origin; reached directly (another origin of the same site), to the gateway's.
    res.writeHead(200, headers).end(page(req.headers['x-bouncer-assertion'] === undefined ? gatewayOrigin : ''))
  }, { readBody: true })
  idp = await startSignInProvider(port, { people: [ALICE] })
  gateway = await startSignInGateway({
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS }),
    roles: [{ name: 'analysts', assumed_by: [{ issuer: 'sso', claims: { groups: 'analysts' } }], policies: ['apps'] }],
    policies: [{ name: 'apps', statements: [{ sid: 'Apps', effect: 'allow', actions: ['GET', 'POST'], routes: ['app'] }] }],
    upstreams: [{ name: 'app', url: upstream.url, identity_assertion: true }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', accept: ['session'] }],
  }, { port })
  browser = await launchChromium()
}, 90_000)

afterAll(() => closeAll(browser, gateway, upstream, idp, () => rm(dir, { recursive: true, force: true })))

describe('an application whose pages say Referrer-Policy: no-referrer', () => {
  it('posts from its own pages (a form, a fetch); a page of another origin of the same site is still refused', { timeout: 240_000 }, async () => {
    const { context, page: tab } = await openPage(browser, { timeout: 60_000 })
    try {
      await tab.goto(`${gateway.url}/app/home`)
      await tab.waitForURL(new RegExp(`^${idp.issuer}/interaction/`))
      await submitProviderLogin(tab, ALICE)
      await tab.waitForURL(`${gateway.url}/app/home`)

      // fetch POST from the app's own page.
      await tab.click('#fetch')
      await expect.poll(() => tab.locator('#status').textContent()).not.toBe('')
      expect(await tab.locator('#status').textContent()).toBe('200')
      // A form post from it.
      await tab.goto(`${gateway.url}/app/home`)
      await tab.click('#save')
      await expect.poll(() => tab.locator('body').textContent(), { timeout: 10_000 }).toContain('Saved.')
      expect(received.filter((line) => line === 'POST /app/save')).toHaveLength(2)

      // A page of the application reached directly: 127.0.0.1 on another port, another origin of the
      // same site, so the Lax cookie goes along. Its form post carries Origin: null too, and is refused.
      await tab.goto(`${upstream.url}/evil`)
      await tab.click('#save')
      await expect.poll(() => tab.locator('body').textContent(), { timeout: 10_000 }).toContain('cors_origin_denied')
      expect(received.filter((line) => line === 'POST /app/save')).toHaveLength(2)
    } finally {
      await context.close()
    }
  })
})
