// Faults a probe found in the console, each driven in a real browser (Debian's chromium through
// playwright-core) against a real gateway, identity provider and SQLite audit log: kilobytes-long
// recorded values must not widen the page, a token refused before any identity existed must be
// explained by its recorded reason, a failed search must not leave stale rows, and the small texts
// (pager, decision line, a failed connection's trace) must read right.
import type { Browser, BrowserContext, Page, Request } from 'playwright-core'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeAll, collectPageErrors, launchChromium, openPage, showPage, signInWithToken, submitToken, waitForAuditRecords } from '../helpers/browser.ts'
import { closedPort } from '../helpers/faults.ts'
import { consoleSettings } from '../helpers/console-gateway.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { openConsoleTab, type ConsoleTab } from '../helpers/console-tab.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'console-probe-admin-token-0123456789'
const LONG_PATH = `/sales/daily/${'p'.repeat(2048)}`
// The longest names a token may give its principal (2,048 bytes: identity/principal-name.ts).
const LONG_SUBJECT = `looker-${'s'.repeat(2_041)}`
const LONG_STRANGER = 'n'.repeat(2_048)

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let browser: Browser
let tab: ConsoleTab
const errors: string[] = []

async function get(path: string, token?: string): Promise<number> {
  const res = await request(`${gateway.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} })
  await res.body.dump()
  return res.statusCode
}

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  const deadUrl = `http://127.0.0.1:${await closedPort()}`
  gateway = await startTestGateway((dir) => ({
    ...consoleSettings(dir, ADMIN_TOKEN),
    issuers: [{ name: 'corp-sso', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'reports', assumed_by: [{ issuer: 'corp-sso', subject: 'looker-*' }], policies: ['read-sales'] }],
    policies: [{ name: 'read-sales', statements: [{ sid: 'AllowSalesReads', effect: 'allow', actions: ['GET'], routes: ['sales.*', 'dead'] }] }],
    upstreams: [{ name: 'sales-api', url: upstream.url }, { name: 'dead-api', url: deadUrl }],
    routes: [
      { id: 'sales.daily', methods: ['GET'], path: '/sales/daily/:region', upstream: 'sales-api' },
      { id: 'dead', methods: ['GET'], path: '/dead', upstream: 'dead-api' },
    ],
  }))
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'the issuer keys', 20_000)
  const now = Math.floor(Date.now() / 1000)
  const statuses = [
    await get(LONG_PATH, await idp.mint({ sub: LONG_SUBJECT })), // allowed: a 2 KB path, a 2 KB subject
    await get(LONG_PATH, await idp.mint({ sub: LONG_STRANGER })), // no role: denied with both
    await get('/sales/daily/eu', await idp.mint({ sub: 'looker-late', iat: now - 600, exp: now - 300 })), // token_expired
    await get('/sales/daily/eu'), // missing_token
    await get('/dead', await idp.mint({ sub: 'looker-dead' })), // the upstream refuses the connection
  ]
  expect(statuses).toEqual([200, 403, 401, 401, 502])
  await waitForAuditRecords(gateway.adminUrl, ADMIN_TOKEN, statuses.length)
  browser = await launchChromium()
  tab = await openConsoleTab(browser, { viewport: { width: 1280, height: 800 } }, { adminUrl: gateway.adminUrl, token: ADMIN_TOKEN })
}, 120_000)

afterAll(() => closeAll(tab, browser, gateway, upstream, idp))

/** The file's one signed-in tab (console-tab.ts), on a document of this test's own; its errors collected under `name`. */
function openConsole(name: string): Promise<{ page: Page; release(): Promise<void> }> {
  return tab.take([['pageerror', (err: Error) => errors.push(`${name}: ${err.message}`)]])
}

/** A context of its own in another time zone, signed in. */
async function openConsoleIn(name: string, timezoneId: string): Promise<{ context: BrowserContext; page: Page }> {
  const { context, page } = await openPage(browser, { viewport: { width: 1280, height: 800 }, timezoneId })
  collectPageErrors(page, errors, `${name}: `)
  await signInWithToken(page, gateway.adminUrl, ADMIN_TOKEN)
  return { context, page }
}

const show = (page: Page, name: string) => showPage(page, gateway.adminUrl, name)

/** How much wider than the window the page is (0 when it fits). */
const overflow = (page: Page) => page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth')

describe('the console with kilobytes-long recorded values', () => {
  it('never grows wider than the window, on any page that shows them', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('long values')
    try {
      await show(page, 'overview')
      await page.locator('.grid3', { hasText: LONG_SUBJECT.slice(0, 40) }).waitFor()
      expect(await overflow(page), 'overview').toBeLessThanOrEqual(0)
      await show(page, 'requests')
      await page.locator('[data-testid=row]', { hasText: LONG_SUBJECT.slice(0, 40) }).waitFor()
      expect(await overflow(page), 'requests').toBeLessThanOrEqual(0)
      await page.locator('[data-testid=row]', { hasText: LONG_SUBJECT.slice(0, 40) }).click()
      await page.locator('[data-testid=explanation]').waitFor()
      expect(await overflow(page), 'a trace').toBeLessThanOrEqual(0)
      await show(page, 'denials')
      await page.locator('[data-testid=denial]', { hasText: LONG_STRANGER.slice(0, 40) }).waitFor()
      expect(await overflow(page), 'denials').toBeLessThanOrEqual(0)
      // The Simulate button of every group is on screen, not pushed off it.
      for (const box of await Promise.all((await page.locator('[data-testid=denial] button').all()).map((b) => b.boundingBox()))) {
        expect((box?.x ?? Infinity) + (box?.width ?? 0)).toBeLessThanOrEqual(1280)
      }
      await show(page, 'audit')
      await page.locator('table.rows tbody tr', { hasText: LONG_SUBJECT.slice(0, 40) }).waitFor()
      expect(await overflow(page), 'audit').toBeLessThanOrEqual(0)
    } finally {
      await release()
    }
  })
})

describe('a denial whose token was rejected before an identity existed', () => {
  it('is explained by its recorded reason in the trace and on the denials page, and simulated without made-up claims', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('rejected token')
    try {
      await show(page, 'requests?status=401')
      await page.locator('[data-testid=row]', { hasText: 'token_expired' }).click()
      const decision = page.locator('[data-testid=trace] [data-testid=decision]')
      await expect.poll(() => decision.innerText()).toMatch(/^DENY 401 token_expired — The credential was rejected before an identity existed: .*expired/)
      expect(await decision.innerText()).not.toMatch(/missing_token|No claims or token/)

      await show(page, 'denials')
      const group = page.locator('[data-testid=denial]', { hasText: 'token_expired' })
      expect(await group.innerText()).toMatch(/Now: The credential was rejected before an identity existed/)
      expect(await group.innerText()).not.toMatch(/missing_token|No claims or token/)
      await group.locator('button:text("Simulate")').click()
      await page.waitForSelector('.simulator')
      expect(await page.inputValue('textarea[name=claims]')).toBe('')
      expect(await page.locator('[data-testid=no-claims]').innerText()).toMatch(/no verified identity \(token_expired\)/)
    } finally {
      await release()
    }
  })
})

describe('the charts', () => {
  it('tell time in UTC, as the rest of the console does, in a browser in another time zone', { timeout: 60_000 }, async () => {
    const { context, page } = await openConsoleIn('charts', 'America/New_York')
    try {
      await show(page, 'overview')
      // The latency chart's legend names the time under the cursor, formatted as its axis is.
      const latency = page.locator('.chart', { hasText: 'Latency' })
      const box = await latency.locator('.u-over').boundingBox()
      if (!box) throw new Error('no latency chart')
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2)
      const value = latency.locator('.u-legend .u-series').first().locator('.u-value')
      await expect.poll(() => value.innerText()).toMatch(/\d{4}-\d{2}-\d{2} \d{1,2}:\d{2}(am|pm)/)
      const [, date, h, m, half] = /(\d{4}-\d{2}-\d{2}) (\d{1,2}):(\d{2})(am|pm)/.exec(await value.innerText()) as RegExpExecArray
      const shown = Date.parse(`${date}T${String((Number(h) % 12) + (half === 'pm' ? 12 : 0)).padStart(2, '0')}:${m}:00Z`)
      // The range is the last hour: read as UTC, the time shown is in it (New York's is 4 or 5 hours off).
      expect(Math.abs(Date.now() - shown)).toBeLessThan(62 * 60_000)
    } finally {
      await context.close()
    }
  })
})

describe('a search that fails', () => {
  it('clears the previous results and says why; since after until is refused, not "No records match."', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('failed search')
    try {
      for (const name of ['requests', 'audit']) {
        await show(page, name)
        const rows = page.locator('table.rows tbody tr')
        await expect.poll(() => rows.count()).toBeGreaterThan(0)
        await page.fill('input[name=since]', 'the day before')
        await page.click('form.filters button[type=submit]')
        await expect.poll(() => page.locator('[role=alert]').innerText()).toMatch(/since "the day before" is neither a duration/)
        expect(await rows.count(), `${name}: the rows of the search before`).toBe(0)
        await page.fill('input[name=since]', '2026-11-26 10:00:00')
        await page.fill('input[name=until]', '2026-11-26 09:00:00')
        await page.click('form.filters button[type=submit]')
        await expect.poll(() => page.locator('[role=alert]').innerText()).toMatch(/since must not be after until/)
        expect(await page.locator('.empty').count(), name).toBe(0)
      }
    } finally {
      await release()
    }
  })
})

describe('the small texts', () => {
  it('a decision line says its status and code once; a failed connection\'s trace says there was no answer', { timeout: 60_000 }, async () => {
    const { page, release } = await openConsole('small texts')
    try {
      await show(page, 'requests?status=401')
      await page.locator('[data-testid=row]', { hasText: 'missing_token' }).click()
      const decision = page.locator('[data-testid=trace] [data-testid=decision]')
      await expect.poll(() => decision.innerText()).toMatch(/^DENY 401 missing_token — No claims or token were given/)
      expect(await decision.innerText()).not.toMatch(/missing_token[\s\S]*missing_token/)

      await show(page, 'requests?route=dead')
      // The list of the route's rows, not the last one's still on the page (its data-ready stays true across the hash change).
      await page.locator('[data-testid=row]', { hasText: 'dead' }).first().click()
      const trace = page.locator('[data-testid=trace]')
      await expect.poll(() => trace.innerText()).toMatch(/ms in all; upstream dead-api gave no answer/)
      expect(await trace.innerText()).not.toMatch(/answered – in – ms/)
    } finally {
      await release()
    }
  })

  it('an empty page of requests reads "none", not "1–0"; the Audit search says when more records match than it shows', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('pager')
    try {
      await show(page, 'requests?route=no.such.route')
      await page.locator('.empty').waitFor()
      expect(await page.locator('.pager').innerText()).not.toContain('1–0')
      expect(await page.locator('.pager').innerText()).toContain('none')

      // 101 records or more: the Audit search shows 100 and says more match.
      await Promise.all(Array.from({ length: 101 }, () => get('/sales/daily/eu')))
      await waitForAuditRecords(gateway.adminUrl, ADMIN_TOKEN, 102, { limit: 200 })
      await show(page, 'audit')
      await expect.poll(() => page.locator('table.rows tbody tr').count()).toBe(100)
      expect(await page.locator('.panel', { hasText: 'Search' }).innerText()).toMatch(/The newest 100 shown; more match/)
    } finally {
      await release()
    }
  })
})

describe('paging the requests while traffic arrives', () => {
  it('the older page starts after the last row shown: none repeats, none is skipped, and newer goes back', { timeout: 120_000 }, async () => {
    const paths = Array.from({ length: 60 }, (_, i) => `/sales/daily/page-${i}`)
    for (const path of paths) await get(path) // one after another: their order is the log's
    const count = async (pattern: string) => {
      const res = await request(`${gateway.adminUrl}/api/audit/page?since=15m&limit=200&route=sales.daily`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
      return ((await res.body.json()) as { records: Array<{ path: string }> }).records.filter((r) => r.path.startsWith(pattern)).length
    }
    await waitFor(async () => (await count('/sales/daily/page-')) === 60, 'the records in the audit log', 20_000)
    const { page, release } = await openConsole('keyset paging')
    try {
      await show(page, 'requests?route=sales.daily&since=15m')
      const requestsShown = () => page.locator('[data-testid=row] td:nth-child(3)').allInnerTexts()
      await expect.poll(async () => (await requestsShown()).length).toBe(50)
      const first = await requestsShown()
      expect(first[0]).toBe(`GET ${paths.at(-1)}`)
      // Five more arrive before "older" is pressed.
      for (let i = 0; i < 5; i++) await get(`/sales/daily/late-${i}`)
      await waitFor(async () => (await count('/sales/daily/late-')) === 5, 'the late records', 20_000)
      await page.click('.pager button:text("older →")')
      await expect.poll(() => page.locator('[data-testid=shown]').innerText()).toMatch(/^51–/)
      await expect.poll(async () => (await requestsShown())[0]).not.toBe(first[0])
      const second = await requestsShown()
      expect(second.filter((r) => first.includes(r))).toEqual([])
      // page-0 … page-9 are the next ten, in order: none skipped.
      expect(second.slice(0, 10)).toEqual(paths.slice(0, 10).reverse().map((p) => `GET ${p}`))
      await page.click('.pager button:text("← newer")')
      await expect.poll(() => page.locator('[data-testid=shown]').innerText()).toBe('1–50')
      await expect.poll(async () => (await requestsShown())[0]).toBe('GET /sales/daily/late-4')
    } finally {
      await release()
    }
  })
})

describe('the overview left open', () => {
  it('stops its live refresh after minutes without use, says so, and resumes at the next input', { timeout: 120_000 }, async () => {
    const { context, page } = await openPage(browser, { viewport: { width: 1280, height: 800 } })
    collectPageErrors(page, errors, 'quiet overview: ')
    await page.clock.install()
    try {
      await page.goto(gateway.adminUrl)
      await submitToken(page, ADMIN_TOKEN)
      await page.locator('.overview[data-ready=true]').waitFor()
      const asked: string[] = []
      page.on('request', (r) => r.url().includes('/api/overview') && asked.push(r.url()))
      await page.clock.runFor(10_000)
      await expect.poll(() => asked.length).toBeGreaterThan(0) // live: it refreshes
      // Six minutes without a click, key or mouse move: it stops, and says so.
      await page.clock.runFor(6 * 60_000)
      await page.locator('[data-testid=quiet]').waitFor()
      const before = asked.length
      await page.clock.runFor(2 * 60_000)
      await page.evaluate('1') // a round trip to the page: a timer's request would have been sent by now
      expect(asked.length).toBe(before)
      // Someone uses it again: it refreshes at once, and lives on.
      await page.mouse.move(5, 5)
      await page.mouse.move(40, 40)
      await expect.poll(() => asked.length).toBeGreaterThan(before)
      await expect.poll(() => page.locator('[data-testid=quiet]').count()).toBe(0)
      expect(asked.at(-1)).toContain('since=1h')
    } finally {
      await context.close()
    }
  })
})

describe('filters in the URL', () => {
  it('the overview keeps its range and chips through reload and back; its denial reasons open Denials at that range, filtered by the code', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('filters in the URL')
    try {
      await show(page, 'overview')
      await page.click('.ranges button:text("6h")')
      await page.waitForURL(/#\/overview\?since=6h$/)
      await page.locator('.grid3 button.link:text("sales.daily")').click()
      await page.locator('.chip', { hasText: 'route sales.daily' }).waitFor()
      await page.reload()
      await page.locator('.chip', { hasText: 'route sales.daily' }).waitFor()
      expect(await page.locator('.ranges button.on').innerText()).toBe('6h')
      await page.goBack()
      await expect.poll(() => page.locator('.chip', { hasText: 'route sales.daily' }).count()).toBe(0)
      expect(await page.locator('.ranges button.on').innerText()).toBe('6h')

      await page.locator('[data-testid=denial-reason]:text("token_expired")').click()
      await page.waitForURL(/#\/denials\?/)
      const params = new URLSearchParams(new URL(page.url()).hash.split('?')[1])
      expect(Object.fromEntries(params)).toEqual({ since: '6h', code: 'token_expired' })
      await page.locator('.denials[data-ready=true]').waitFor()
      expect(await page.locator('.ranges button.on').innerText()).toBe('6h')
      const codes = await page.locator('[data-testid=denial] td:first-child').allInnerTexts()
      expect(codes.length).toBeGreaterThan(0)
      for (const code of codes) expect(code).toMatch(/token_expired$/)
      // Clearing the code shows every denial of the range again.
      await page.locator('[data-testid=filter] button').click()
      await expect.poll(async () => (await page.locator('[data-testid=denial] td:first-child').allInnerTexts()).some((c) => c.endsWith('missing_token'))).toBe(true)
    } finally {
      await release()
    }
  })

  it('the Requests search lives in the URL: a deep link\'s since is used, a search survives a reload', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('requests in the URL')
    const asked: string[] = []
    const onRequest = (r: Request) => r.url().includes('/api/audit/page') && asked.push(decodeURIComponent(r.url()))
    page.on('request', onRequest)
    try {
      await show(page, 'requests?since=10m')
      expect(await page.inputValue('input[name=since]')).toBe('10m')
      expect(asked.at(-1)).toContain('since=10m')
      await page.fill('input[name=status]', '502')
      await page.click('form.filters button[type=submit]')
      await page.waitForURL(/status=502/)
      await page.reload()
      await page.locator('[data-testid=row]').first().waitFor()
      expect(await page.inputValue('input[name=status]')).toBe('502')
      expect(await page.inputValue('input[name=since]')).toBe('10m')
      for (const status of await page.locator('[data-testid=row] td:nth-child(2)').allInnerTexts()) expect(status.split('\n')[0]).toBe('502') // then the decision, for a screen reader
    } finally {
      page.off('request', onRequest)
      await release()
    }
  })
})

describe('the console', () => {
  it('logged no error in any page', () => {
    expect(errors).toEqual([])
  })
})
