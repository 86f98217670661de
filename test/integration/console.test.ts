// The console in a real browser (Debian's chromium, driven by playwright-core, headless) against a
// real gateway under a little load: a real identity provider, upstream and SQLite audit log. Every
// page is driven and saved as a screenshot under test-results/console/; no page may log an error
// (a CSP violation, a failed request, an exception).
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, BrowserContext, ConsoleMessage, Page, Request } from 'playwright-core'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeAll, collectPageErrors, launchChromium, openPage, SCREENSHOTS, showPage, signInWithToken, submitToken } from '../helpers/browser.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { openConsoleTab, type ConsoleTab, type Watch } from '../helpers/console-tab.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'console-test-admin-token-0123456789'
const READ_TOKEN = 'console-test-read-token-0123456789'
const UI_TIMEOUT = 30_000

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let browser: Browser
let tab: ConsoleTab
let config: Record<string, unknown>
let dir: string
const errors: string[] = []

function gatewayConfig(issuer: string, dir: string): Record<string, unknown> {
  return {
    admin: { token: ADMIN_TOKEN, read_token: READ_TOKEN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    telemetry: { trace_url: 'https://traces.example/trace/{trace_id}', log_level: 'silent' },
    issuers: [{ name: 'corp-sso', issuer, audiences: [AUDIENCE] }],
    roles: [
      { name: 'reports', assumed_by: [{ issuer: 'corp-sso', subject: 'looker-*' }], policies: ['read-sales'] },
      { name: 'agents', assumed_by: [{ issuer: 'corp-sso', subject: 'analytics-agent' }], policies: ['agent-orders'] },
    ],
    policies: [
      {
        name: 'read-sales',
        statements: [
          { sid: 'AllowSalesReads', effect: 'allow', actions: ['GET'], routes: ['sales.*'] },
          { sid: 'NoCustomerPII', effect: 'deny', actions: ['*'], routes: ['sales.customers'] },
        ],
      },
      { name: 'agent-orders', statements: [{ sid: 'AgentsReadOrders', effect: 'allow', actions: ['GET'], routes: ['orders'] }] },
    ],
    upstreams: [{ name: 'sales-api', url: upstream.url }],
    routes: [
      { id: 'sales.daily', methods: ['GET'], path: '/sales/daily/:region', upstream: 'sales-api', limits: ['per-principal'] },
      { id: 'sales.customers', methods: ['GET'], path: '/sales/customers', upstream: 'sales-api' },
      { id: 'orders', methods: ['GET'], path: '/orders', upstream: 'sales-api' },
      { id: 'health', methods: ['GET'], path: '/healthz', upstream: 'sales-api', public: true },
    ],
    limits: [{ name: 'per-principal', key: 'principal', rate: '1000/s', burst: 1000 }],
  }
}

async function get(path: string, token?: string): Promise<number> {
  const res = await request(`${gateway.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} })
  await res.body.dump()
  return res.statusCode
}

async function adminJson<T>(path: string, init: { method?: 'GET' | 'POST'; body?: unknown; token?: string } = {}): Promise<{ status: number; body: T }> {
  const res = await request(`${gateway.adminUrl}/api/${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${init.token ?? ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  })
  return { status: res.statusCode, body: (await res.body.json()) as T }
}

/** A little load: allowed reads, an explicit deny, an implicit deny, no token, no route. */
async function traffic(looker: string, agent: string): Promise<number> {
  let sent = 0
  for (let i = 0; i < 6; i++) {
    const results = await Promise.all([
      get(`/sales/daily/${i % 2 ? 'eu' : 'us'}`, looker),
      get('/sales/customers', looker),
      get('/orders', agent),
      get('/sales/daily/eu', agent),
      get('/orders'),
      get('/healthz'),
    ])
    sent += results.length
  }
  sent += (await get('/nowhere', looker)) ? 1 : 0
  return sent
}

const PAGE_OPTIONS = { viewport: { width: 1400, height: 900 }, acceptDownloads: true, timeout: UI_TIMEOUT }

/** Beyond exceptions: Chromium's own console errors (a CSP violation) and failed requests, each under `name`. */
function watchErrors(name: string): Watch {
  return [
    ['console', (msg: ConsoleMessage) => msg.type() === 'error' && errors.push(`${name}: ${msg.text()}`)],
    ['pageerror', (err: Error) => errors.push(`${name}: ${err.message}`)],
    ['requestfailed', (req: Request) => errors.push(`${name}: ${req.url()} failed: ${req.failure()?.errorText}`)],
  ]
}

async function openConsole(token: string, name: string): Promise<{ context: BrowserContext; page: Page }> {
  const { context, page } = await openPage(browser, PAGE_OPTIONS)
  for (const [event, handler] of watchErrors(name)) page.on(event as 'console', handler as () => void)
  await signInWithToken(page, gateway.adminUrl, token)
  return { context, page }
}

/** The file's one tab signed in with the admin token (console-tab.ts), on a document of this test's own. */
const openAdminConsole = (name: string) => tab.take(watchErrors(name))

const show = (page: Page, name: string, ready?: string) => showPage(page, gateway.adminUrl, name, ready)

const shot = (page: Page, name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })

let looker: string
let agent: string
let sent: number

beforeAll(async () => {
  await mkdir(SCREENSHOTS, { recursive: true })
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  dir = await mkdtemp(join(tmpdir(), 'bouncer-console-'))
  config = gatewayConfig(idp.issuer, dir)
  gateway = await startTestGateway(config)
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'the issuer keys', 20_000)
  looker = await idp.token('looker-reports')
  agent = await idp.token('analytics-agent')
  sent = await traffic(looker, agent)
  await waitFor(async () => (await adminJson<{ totals: { requests: number } }>('overview?since=15m')).body.totals.requests >= sent, 'every request in the audit log', 20_000)
  browser = await launchChromium()
  tab = await openConsoleTab(browser, PAGE_OPTIONS, { adminUrl: gateway.adminUrl, token: ADMIN_TOKEN })
}, 120_000)

afterAll(() => closeAll(tab, browser, gateway, upstream, idp, () => rm(dir, { recursive: true, force: true })))

describe('the console', () => {
  it('is served at / with a strict Content-Security-Policy, and its data needs the token', async () => {
    const res = await request(`${gateway.adminUrl}/`)
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    expect(String(res.headers['content-security-policy'])).toContain("default-src 'self'")
    expect(String(res.headers['content-security-policy'])).toContain("script-src 'self'")
    expect(String(res.headers['content-security-policy'])).not.toContain('unsafe-inline')
    expect(res.headers['x-frame-options']).toBe('DENY')
    const html = await res.body.text()
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/) // no inline script
    expect((await request(`${gateway.adminUrl}/api/overview`)).statusCode).toBe(401)
  })

  it('overview: requests by outcome and latency charts, top routes, principals and denial reasons, from the audit log', async () => {
    const { page, release } = await openAdminConsole('admin')
    try {
      await show(page, 'overview')
      expect(await page.locator('.chart canvas').count()).toBeGreaterThanOrEqual(2)
      const totals = await page.locator('.totals').innerText()
      expect(Number(/([\d,]+)\s+requests/.exec(totals)?.[1]?.replace(/,/g, ''))).toBeGreaterThanOrEqual(sent)
      await expect.poll(() => page.locator('.legend').innerText()).toMatch(/deny:policy_denied/)
      expect(await page.locator('.grid3').innerText()).toMatch(/sales\.daily[\s\S]*looker-reports[\s\S]*NoCustomerPII/)
      await shot(page, 'overview')
      // Clicking a route filters the page by it.
      await page.click('.grid3 button:text("sales.customers")')
      await page.waitForSelector('.chip:has-text("route sales.customers")')
      await expect.poll(async () => page.locator('.legend').innerText()).not.toMatch(/^allow/)
      // Brushing: a drag across the chart narrows the range to what was selected. Live refresh is
      // turned off first (a new first bucket rebuilds the chart under the mouse), and the drag is
      // retried until the chip shows, since the filter's own redraw may still be replacing the canvas.
      await page.locator('label.live input').uncheck()
      await expect.poll(async () => {
        const box = await page.locator('.chart .u-over').first().boundingBox()
        if (!box) return false
        await page.mouse.move(box.x + box.width * 0.2, box.y + box.height / 2)
        await page.mouse.down()
        await page.mouse.move(box.x + box.width * 0.98, box.y + box.height / 2, { steps: 5 })
        await page.mouse.up()
        return (await page.locator('.chip:has-text("–")').count()) > 0
      }, { timeout: 15_000 }).toBe(true)
    } finally {
      await release()
    }
  })

  it('requests: a denied request\'s trace shows the statement that denied it, its timing and a link to the trace', async () => {
    const { page, release } = await openAdminConsole('admin')
    try {
      await show(page, 'requests?route=sales.customers')
      await page.locator('[data-testid=row]').first().click()
      const trace = page.locator('[data-testid=trace]')
      await trace.waitFor()
      await expect.poll(() => trace.innerText()).toMatch(/403 deny/)
      expect(await trace.innerText()).toMatch(/statement NoCustomerPII/)
      expect(await trace.locator('[data-testid=statement]', { hasText: 'NoCustomerPII' }).innerText()).toMatch(/deny NoCustomerPII.*matches/)
      expect(await trace.innerText()).toMatch(/reports: granted by assumed_by\[0\]: issuer corp-sso, subject looker-\*/)
      expect(await trace.locator('a[href^="https://traces.example/trace/"]').count()).toBe(1)
      await shot(page, 'requests')
      // An allowed request shows the upstream's share of the time.
      await show(page, 'requests?route=sales.daily&decision=allow')
      await page.locator('[data-testid=row]').first().click()
      await expect.poll(() => page.locator('[data-testid=trace]').innerText()).toMatch(/upstream sales-api answered 200 in [\d.]+ ms/)
    } finally {
      await release()
    }
  })

  it('denials: grouped by code × route × principal with the why; simulate opens the simulator, which agrees with bouncer explain', async () => {
    const { page, release } = await openAdminConsole('admin')
    try {
      await show(page, 'denials')
      const group = page.locator('[data-testid=denial]', { hasText: 'sales.customers' })
      expect(await group.innerText()).toMatch(/policy_denied[\s\S]*looker-reports[\s\S]*NoCustomerPII/)
      expect(await page.locator('[data-testid=denial]', { hasText: 'missing_token' }).count()).toBe(1)
      await shot(page, 'denials')
      await group.locator('button:text("Simulate")').click()
      await page.waitForSelector('.simulator')
      expect(await page.inputValue('input[name=path]')).toBe('/sales/customers')
      const claims = JSON.parse(await page.inputValue('textarea[name=claims]')) as Record<string, unknown>
      expect(claims).toMatchObject({ sub: 'looker-reports', iss: idp.issuer })
      await page.click('form.simulate button:text("Explain")')
      const decision = await page.locator('[data-testid=decision]').innerText()
      const cli = await runCliInProcess(['explain', '--config', gateway.file, '--method', 'GET', '--path', '/sales/customers', '--claims', JSON.stringify(claims), '--ip', '127.0.0.1', '--json'])
      const expected = (JSON.parse(cli.stdout) as { decision: { effect: string; status: number; code: string; reason: string } }).decision
      expect(decision).toContain(expected.effect.toUpperCase())
      expect(decision).toContain(`${expected.status} ${expected.code}`)
      expect(decision).toContain(expected.reason.replace(`${expected.status} ${expected.code}: `, '')) // said once, not repeated
      await shot(page, 'simulator')

      // A pasted token is decoded (and explained by the server), never stored.
      await page.click('input[name=mode] >> nth=1')
      await page.fill('textarea[name=token]', looker)
      await page.fill('input[name=path]', '/sales/daily/eu')
      await page.click('form.simulate button:text("Explain")')
      await expect.poll(() => page.locator('[data-testid=decision]').innerText()).toMatch(/ALLOW 200 — Allowed by statement "AllowSalesReads"/)
      expect(await page.locator('pre.claims').innerText()).toContain('"sub": "looker-reports"')
      expect(await page.evaluate(() => JSON.stringify({ ...sessionStorage, ...localStorage }))).not.toContain(looker.slice(0, 40))
    } finally {
      await release()
    }
  })

  it('replay: a stricter draft lists the recorded requests it would now deny', async () => {
    const { page, release } = await openAdminConsole('admin')
    try {
      await show(page, 'simulator')
      const stricter = structuredClone(config) as { policies: Array<{ name: string; statements: Array<{ sid: string }> }> }
      const readSales = stricter.policies[0] as { statements: Array<{ sid: string; routes?: string[] }> }
      readSales.statements = readSales.statements.filter((s) => s.sid !== 'AllowSalesReads') // looker may read nothing now
      await page.fill('textarea[name=draft]', stringify(stricter))
      await page.click('button:text("Replay")')
      const result = page.locator('[data-testid=replay]')
      await result.waitFor()
      const changes = await page.locator('[data-testid=change]').allInnerTexts()
      expect(changes.length).toBe(2) // /sales/daily/us and /sales/daily/eu for looker-reports
      for (const change of changes) expect(change).toMatch(/GET \/sales\/daily\/(eu|us)\s+looker-reports\s+3\s+allow\s+AllowSalesReads\s+deny policy_denied/)
      await shot(page, 'replay')
    } finally {
      await release()
    }
  })

  it('audit: search, export of the filtered rows, the chain\'s state and verify', async () => {
    const { page, release } = await openAdminConsole('admin')
    try {
      await show(page, 'audit')
      await page.selectOption('select[name=decision]', 'deny')
      await page.fill('input[name=route]', 'sales.customers')
      await page.click('form.filters button[type=submit]')
      await expect.poll(async () => (await page.locator('table.rows tbody tr').allInnerTexts()).every((row) => row.includes('sales.customers'))).toBe(true)
      const [csv] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=export-csv]')])
      await expect.poll(() => page.textContent('[data-testid=saved]')).toMatch(/^Saved bouncer-audit-[0-9TZ-]+\.csv: every record of this filter\.$/)
      const lines = (await readFile(await csv.path(), 'utf8')).trim().split('\n')
      const header = (lines[0] as string).split(',')
      expect(header.slice(0, 3)).toEqual(['id', 'time', 'request_id'])
      expect(lines).toHaveLength(1 + 6)
      for (const line of lines.slice(1)) {
        const cells = line.split(',')
        expect(cells[header.indexOf('route')]).toBe('sales.customers')
        expect(cells[header.indexOf('decision')]).toBe('deny')
      }
      const [ndjson] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=export-ndjson]')])
      const records = (await readFile(await ndjson.path(), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { statement: string })
      expect(records.map((r) => r.statement)).toEqual(Array(6).fill('NoCustomerPII'))
      await page.click('[data-testid=verify]')
      await expect.poll(() => page.locator('[data-testid=verification]').innerText()).toMatch(/✓ Verified through record \d+/)
      expect(await page.locator('.panel').first().innerText()).toMatch(/records, head/)
      await shot(page, 'audit')
    } finally {
      await release()
    }
  })

  it('catalog: routes × roles, the issuer\'s keys, limits and secrets, and no approvals', async () => {
    const { page, release } = await openAdminConsole('admin')
    try {
      await show(page, 'catalog')
      const matrix = page.locator('[data-testid=matrix]')
      expect(await matrix.locator('tr', { hasText: 'sales.daily' }).innerText()).toMatch(/GET/)
      expect(await matrix.locator('tr', { hasText: 'sales.customers' }).innerText()).toMatch(/GET/) // struck: denied
      expect(await matrix.locator('tr', { hasText: 'sales.customers' }).locator('s').innerText()).toContain('GET')
      expect(await matrix.locator('tr', { hasText: 'healthz' }).innerText()).toMatch(/public/)
      const issuers = await page.locator('.panel', { hasText: 'Issuers' }).innerText()
      expect(issuers).toMatch(/corp-sso[\s\S]*ready[\s\S]*ES256/)
      expect(await page.locator('.panel', { hasText: 'Limits' }).innerText()).toMatch(/per-principal\s+principal\s+1000\/s \(burst 1000\)\s+sales\.daily/)
      expect(await page.locator('.panel', { hasText: 'Pending approvals' }).innerText()).toMatch(/No approvals on this gateway|Nothing waits/)
      await shot(page, 'catalog')
    } finally {
      await release()
    }
  })

  it('access: the read-only token reads every page but cannot reload, verify or replay', async () => {
    const { context, page } = await openConsole(READ_TOKEN, 'reader')
    try {
      expect(await page.locator('[data-testid=access]').innerText()).toBe('read-only')
      await show(page, 'overview')
      expect(await page.locator('[data-testid=reload]').count()).toBe(0)
      await show(page, 'audit')
      expect(await page.locator('[data-testid=verify]').count()).toBe(0)
      await show(page, 'simulator')
      expect(await page.locator('button:text("Replay")').isDisabled()).toBe(true)
      // Not just hidden: the API refuses the reader's token.
      const status = await page.evaluate(async (token) => (await fetch('/api/reload', { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status, READ_TOKEN)
      expect(status).toBe(403)
      expect((await adminJson('audit/verify', { method: 'POST', token: READ_TOKEN })).status).toBe(403)
      await shot(page, 'read-only')
      // The admin's console has the reload button, and it reloads.
      const admin = await openConsole(ADMIN_TOKEN, 'admin')
      try {
        await admin.page.click('[data-testid=reload]')
        await expect.poll(() => admin.page.locator('.reload small').innerText()).toMatch(/reloaded \(generation \d+\)/)
      } finally {
        await admin.context.close()
      }
    } finally {
      await context.close()
    }
  })

  it('says what is wrong with a token that is not valid, and with claims that are not JSON', async () => {
    const { context, page } = await openPage(browser, { timeout: UI_TIMEOUT })
    collectPageErrors(page, errors, 'bad input: ')
    try {
      await page.goto(gateway.adminUrl)
      await submitToken(page, 'not-the-token')
      expect(await page.locator('[role=alert]').innerText()).toBe('That token is not valid for this gateway.')
      expect(await page.evaluate(() => JSON.stringify(sessionStorage))).toBe('{}')
      await submitToken(page, ADMIN_TOKEN)
      await show(page, 'simulator')
      await page.fill('textarea[name=claims]', '{"sub": ')
      await page.click('form.simulate button:text("Explain")')
      expect(await page.locator('[role=alert]').innerText()).toMatch(/^The claims are not JSON: /)
    } finally {
      await context.close()
    }
  })

  it('logged no error in any page (CSP violations, failed requests, exceptions)', () => {
    // The reader's fetch of /api/reload answered 403 on purpose: Chromium logs that as an error.
    expect(errors.filter((e) => !/reader: .*403/.test(e))).toEqual([])
  })
})
