// Signing in to the console as a person (SPEC "Console": a sign-in whose roles include one of
// admin.roles), in a real browser (Debian's chromium, playwright-core) against a real provider
// (oidc-provider): an admin role may reload, a read role may not, anyone else is refused with the
// reason; the session cookie is the console's own (HttpOnly, never forwarded upstream), its POSTs
// need the console's Origin (CSRF), and signing out ends it. A person signed in approves an agent's
// pending tool call as themself. No admin token is configured at all.
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Client } from '@modelcontextprotocol/client'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeAll, collectPageErrors, consoleCookie, launchChromium, openPage, SCREENSHOTS, signInAtProvider } from '../helpers/browser.ts'
import { closedPort } from '../helpers/faults.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { auditRows, connect, MCP_RESOURCE, mcpTestConfig } from '../helpers/mcp.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { ALICE_ADMIN, CONSOLE_CLIENT } from '../helpers/sign-in.ts'
import { waitFor } from '../helpers/wait.ts'

const BOB = { username: 'bob', password: 'bob-password-12345', name: 'Bob Viewer', email: 'bob@example.com', groups: ['support'] }
const CAROL = { username: 'carol', password: 'carol-password-123', name: 'Carol Sales', email: 'carol@example.com', groups: ['sales'] }

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let browser: Browser
let admin: string
let dir: string
let reporter: Client

beforeAll(async () => {
  await mkdir(SCREENSHOTS, { recursive: true })
  dir = await mkdtemp(join(tmpdir(), 'bouncer-console-sign-in-'))
  upstream = await startUpstream()
  const adminPort = await closedPort()
  admin = `http://127.0.0.1:${adminPort}`
  idp = await startIdentityProvider({ people: [ALICE_ADMIN, BOB, CAROL], webClients: [{ ...CONSOLE_CLIENT, redirectUris: [`${admin}/.bouncer/callback`], postLogoutRedirectUris: [] }] })
  // The MCP test config (issuer corp-sso, sales routes, tools): listing customers waits for an approver.
  const base = mcpTestConfig(idp.issuer, upstream.url, dir, { approvals: [{ tools: ['list_*'], approvers: ['console-admins'], ttl: '15m' }] })
  gateway = await startTestGateway({
    ...base,
    admin: { roles: ['console-admins'], read_roles: ['console-viewers'] },
    sign_in: { issuer: 'corp-sso', client_id: CONSOLE_CLIENT.clientId, client_secret: CONSOLE_CLIENT.secret, scopes: ['openid', 'email', 'profile', 'groups'] },
    roles: [
      ...base.roles,
      { name: 'console-admins', assumed_by: [{ issuer: 'corp-sso', claims: { groups: 'platform' } }], policies: [] },
      { name: 'console-viewers', assumed_by: [{ issuer: 'corp-sso', claims: { groups: 'support' } }], policies: [] },
      { name: 'sales', assumed_by: [{ issuer: 'corp-sso', claims: { groups: 'sales' } }], policies: ['reporter'] },
    ],
  }, { adminPort })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'the issuer keys')
  browser = await launchChromium()
}, 90_000)

afterAll(() => closeAll(reporter, browser, gateway, upstream, idp, () => rm(dir, { recursive: true, force: true })))

/** Opens the console, follows "Sign in with your company account" and signs in at the provider. */
async function signIn(person: typeof ALICE_ADMIN): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const { context, page } = await openPage(browser, { timeout: 60_000 }) // a loaded machine starts chromium slowly
  const errors = collectPageErrors(page)
  await page.goto(admin)
  await signInAtProvider(page, idp.issuer, admin, person)
  return { context, page, errors }
}

describe('signing in to the console', () => {
  it('says where to sign in (the session of nobody, a 401), and sends the browser to the provider with the admin listener\'s callback', async () => {
    const nobody = await request(`${admin}/api/session`)
    expect(nobody.statusCode).toBe(200)
    expect(await nobody.body.json()).toMatchObject({ access: null, via: null, sign_in: '/.bouncer/sign_in', sign_out: '/.bouncer/sign_out', may: { reload: false } })
    const res = await request(`${admin}/api/overview`)
    expect(res.statusCode).toBe(401)
    expect(res.headers['x-bouncer-sign-in']).toBe('/.bouncer/sign_in')
    expect(((await res.body.json()) as { code: string }).code).toBe('session_required')
    // A credential that is sent must hold, on the session endpoint too.
    const wrong = await request(`${admin}/api/session`, { headers: { authorization: 'Bearer not-a-token' } })
    expect(wrong.statusCode).toBe(401)
    await wrong.body.dump()
    const start = await request(`${admin}/.bouncer/sign_in?return_to=/`)
    await start.body.dump()
    expect(start.statusCode).toBe(302)
    const location = new URL(String(start.headers.location))
    expect(location.origin).toBe(new URL(idp.issuer).origin)
    expect(location.searchParams.get('redirect_uri')).toBe(`${admin}/.bouncer/callback`)
    expect(location.searchParams.get('code_challenge_method')).toBe('S256')
  })

  it('an admin role may reload; the cookie is HttpOnly, never reaches an upstream, and its POSTs need the console\'s Origin', { timeout: 180_000 }, async () => {
    const { context, page, errors } = await signIn(ALICE_ADMIN)
    try {
      await expect.poll(() => page.locator('[data-testid=access]').textContent()).toBe('admin')
      expect(await page.locator('[data-testid=principal]').textContent()).toBe('corp-sso/alice')
      await page.locator('.overview[data-ready=true]').waitFor()
      await page.screenshot({ path: join(SCREENSHOTS, 'sign-in-admin.png'), fullPage: true })
      await page.click('[data-testid=reload]')
      await expect.poll(() => page.locator('.reload [role=status]').textContent()).toMatch(/^reloaded \(generation \d+\)$/)

      const cookies = await context.cookies(admin)
      expect(cookies.find((c) => c.name === 'bouncer_console')).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' })
      expect(await page.evaluate('document.cookie')).not.toContain('bouncer_console')

      // CSRF: the same cookie from another origin, or with no Origin, changes nothing.
      const cookie = await consoleCookie(context, admin)
      for (const origin of ['http://evil.example', undefined]) {
        const res = await request(`${admin}/api/reload`, { method: 'POST', headers: { cookie, ...(origin ? { origin } : {}) } })
        expect(res.statusCode).toBe(403)
        expect(((await res.body.json()) as { code: string }).code).toBe('cors_origin_denied')
      }
      const own = await request(`${admin}/api/reload`, { method: 'POST', headers: { cookie, origin: admin } })
      expect(own.statusCode).toBe(200)
      await own.body.dump()

      // A browser sends a cookie to every port of its host: the gateway keeps the console's to itself.
      const token = await idp.token('looker-reports')
      const forwarded = await request(`${gateway.url}/sales/daily/eu`, { headers: { authorization: `Bearer ${token}`, cookie: `${cookie}; theme=dark` } })
      expect(forwarded.statusCode).toBe(200)
      await forwarded.body.dump()
      expect(upstream.received.at(-1)?.headers.cookie).toBe('theme=dark')

      // An agent's call waits for approval; alice, signed in, approves it as herself (no token to paste).
      // (Connected after the reloads above: a reload starts MCP sessions afresh.)
      reporter = await connect(`${gateway.url}/mcp`, await idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
      const pending = (await reporter.callTool({ name: 'list_customers', arguments: {} })).structuredContent as { status: string; approval_id: string }
      expect(pending.status).toBe('pending_approval')
      await page.goto(`${admin}/#/catalog`)
      await page.locator('tr', { hasText: 'list_customers' }).locator('button:text("Approve")').click()
      await expect.poll(async () => {
        const res = await request(`${admin}/api/approvals/${pending.approval_id}`, { headers: { cookie } })
        return ((await res.body.json()) as { status: string }).status
      }).toBe('approved')
      await expect.poll(() => auditRows(join(dir, 'audit.db'), `detail LIKE 'Approval ${pending.approval_id} approved%'`)[0])
        .toMatchObject({ subject: 'alice', credential: 'session', tool: 'list_customers' })
      expect(await page.locator('input[type=password]').count()).toBe(0)

      // Signing out ends the session: the cookie no longer opens the API, and the console asks again.
      await page.click('header button.link:text("Sign out")')
      await page.locator('[data-testid=sso]').waitFor()
      const after = await request(`${admin}/api/session`, { headers: { cookie } })
      expect(after.statusCode).toBe(401)
      expect(((await after.body.json()) as { code: string }).code).toBe('session_expired')
      expect(errors).toEqual([])
    } finally {
      await context.close()
    }
  })

  it('a read role reads but cannot reload; a person with neither role is told why', { timeout: 180_000 }, async () => {
    const bob = await signIn(BOB)
    try {
      await expect.poll(() => bob.page.locator('[data-testid=access]').textContent()).toBe('read-only')
      expect(await bob.page.locator('[data-testid=reload]').count()).toBe(0)
      await bob.page.locator('.overview[data-ready=true]').waitFor()
      const res = await request(`${admin}/api/reload`, { method: 'POST', headers: { cookie: await consoleCookie(bob.context, admin), origin: admin } })
      expect(res.statusCode).toBe(403)
      expect(((await res.body.json()) as { code: string; detail: string }).detail).toMatch(/needs admin access/)
    } finally {
      await bob.context.close()
    }
    const carol = await signIn(CAROL)
    try {
      await expect.poll(() => carol.page.locator('[data-testid=refusal]').textContent())
        .toBe('Signed in as corp-sso/carol with the roles sales: the console needs one of console-admins, console-viewers (admin.roles, admin.read_roles).')
      await carol.page.screenshot({ path: join(SCREENSHOTS, 'sign-in-refused.png'), fullPage: true })
      // Refused is not stuck: signing out ends the session, and the page offers the sign-in again.
      const cookie = await consoleCookie(carol.context, admin)
      await carol.page.click('[data-testid=sign-out]')
      await carol.page.locator('[data-testid=sso]').waitFor()
      expect(await carol.page.locator('[data-testid=refusal]').count()).toBe(0)
      const after = await request(`${admin}/api/session`, { headers: { cookie } })
      expect(after.statusCode).toBe(401)
      expect(((await after.body.json()) as { code: string }).code).toBe('session_expired')
      expect(carol.errors).toEqual([])
    } finally {
      await carol.context.close()
    }
  })
})
