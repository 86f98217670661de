// A console session as a person lives it, in a real browser (Debian's chromium, playwright-core)
// against a real gateway and provider (oidc-provider): signing in from a deep link comes back to
// that page with its filters (the fragment is the console's route), and a session that ends while
// the console is open (signed out elsewhere, revoked, idle) says so on the sign-in page instead of
// silently showing it, and signing in again returns to the page asked for.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeAll, collectPageErrors, consoleCookie, launchChromium, openPage, signInAtProvider } from '../helpers/browser.ts'
import { closedPort } from '../helpers/faults.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { ALICE_ADMIN, CONSOLE_CLIENT } from '../helpers/sign-in.ts'
import { waitFor } from '../helpers/wait.ts'


let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let browser: Browser
let admin: string
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-console-session-'))
  upstream = await startUpstream()
  const adminPort = await closedPort()
  admin = `http://127.0.0.1:${adminPort}`
  idp = await startIdentityProvider({ people: [ALICE_ADMIN], webClients: [{ ...CONSOLE_CLIENT, redirectUris: [`${admin}/.bouncer/callback`], postLogoutRedirectUris: [] }] })
  gateway = await startTestGateway({
    admin: { roles: ['console-admins'] },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    telemetry: { log_level: 'silent' },
    issuers: [{ name: 'corp-sso', issuer: idp.issuer, audiences: [CONSOLE_CLIENT.clientId] }],
    sign_in: { issuer: 'corp-sso', client_id: CONSOLE_CLIENT.clientId, client_secret: CONSOLE_CLIENT.secret, scopes: ['openid', 'email', 'profile', 'groups'] },
    roles: [{ name: 'console-admins', assumed_by: [{ issuer: 'corp-sso', claims: { groups: 'platform' } }], policies: [] }],
    upstreams: [{ name: 'sales-api', url: upstream.url }],
    routes: [{ id: 'sales.daily', methods: ['GET'], path: '/sales/daily/:region', upstream: 'sales-api' }],
  }, { adminPort })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'the issuer keys', 20_000)
  browser = await launchChromium()
}, 120_000)

afterAll(() => closeAll(browser, gateway, upstream, idp, () => rm(dir, { recursive: true, force: true })))

describe('a person\'s console session', () => {
  it('signing in from a deep link returns to that page with its filters; a session that ends says so, and signing in again returns there', { timeout: 180_000 }, async () => {
    const { context, page } = await openPage(browser, { timeout: 60_000 })
    const errors = collectPageErrors(page)
    try {
      await page.goto(`${admin}/#/requests?since=2h&status=401`)
      await signInAtProvider(page, idp.issuer, admin, ALICE_ADMIN)
      await page.locator('[data-testid=access]').waitFor()
      expect(new URL(page.url()).hash).toBe('#/requests?since=2h&status=401')
      await page.locator('.requests[data-ready=true]').waitFor()
      expect(await page.inputValue('input[name=status]')).toBe('401')
      expect(await page.inputValue('input[name=since]')).toBe('2h')

      // The session ends elsewhere (signed out from another tab, as `bouncer sessions revoke` would end it).
      const cookie = await consoleCookie(context, admin)
      const out = await request(`${admin}/.bouncer/sign_out`, { method: 'POST', headers: { cookie, origin: admin } })
      await out.body.dump()
      expect(out.statusCode).toBeLessThan(400)
      expect((await request(`${admin}/api/session`, { headers: { cookie } })).statusCode).toBe(401)

      // The next click finds it ended: the sign-in page says why, and offers to come back here.
      await page.click('header nav a:text("Denials")')
      await expect.poll(() => page.locator('[data-testid=session-ended]').innerText()).toBe('Your session ended: sign in again.')
      expect(new URL(page.url()).hash).toBe('#/denials')
      expect(await page.getAttribute('[data-testid=sso]', 'href')).toContain(`return_to=${encodeURIComponent('/#/denials')}`)
      // Still signed in at the provider: it answers at once, with no form.
      await page.click('[data-testid=sso]')
      await page.waitForURL(`${admin}/#/denials`)
      await page.locator('[data-testid=access]').waitFor()
      await page.locator('.denials[data-ready=true]').waitFor()
      expect(await page.locator('[data-testid=session-ended]').count()).toBe(0)
      expect(errors).toEqual([])
    } finally {
      await context.close()
    }
  })
})
