// Found by a probe: on the Requests and Audit pages opened without filters (#/requests, as the nav
// links open them), pressing Search with the form as it was did nothing — the address became
// #/requests?since=24h, the same search, so nothing was asked again — and the records written since
// never appeared: an operator watching for the next 403 saw a frozen list. The same search now asks
// again, from the newest page. Real chromium, a real gateway and SQLite log.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { closeAll, collectPageErrors, launchChromium, openPage, signInWithToken, waitForAuditRecords } from '../helpers/browser.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const ADMIN_TOKEN = 'console-search-again-admin-token-0123456789'

let upstream: TestUpstream
let gateway: TestGateway
let browser: Browser
let dir: string

const get = async (path: string) => (await request(`${gateway.url}${path}`)).body.dump()

beforeAll(async () => {
  upstream = await startUpstream()
  dir = await mkdtemp(join(tmpdir(), 'bouncer-console-search-again-'))
  gateway = await startTestGateway({
    admin: { token: ADMIN_TOKEN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    telemetry: { log_level: 'silent' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', methods: ['GET'], path: '/open', upstream: 'api', public: true }],
  })
  await get('/open')
  await waitForAuditRecords(gateway.adminUrl, ADMIN_TOKEN, 1)
  browser = await launchChromium()
}, 120_000)

afterAll(() => closeAll(browser, gateway, upstream, () => rm(dir, { recursive: true, force: true })))

async function searchAgainShowsNewRecords(page: Page, nav: string, rows: string, before: number) {
  await page.getByRole('link', { name: nav, exact: true }).click()
  await expect.poll(() => page.locator(rows).count()).toBe(before)
  await get('/open')
  await waitForAuditRecords(gateway.adminUrl, ADMIN_TOKEN, before + 1)
  await page.getByRole('button', { name: 'Search', exact: true }).click()
  await expect.poll(() => page.locator(rows).count()).toBe(before + 1)
}

it('Search with the form unchanged on a page opened without filters asks again and shows the records written since', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(browser, { viewport: { width: 1280, height: 800 } })
  const errors = collectPageErrors(page)
  try {
    await signInWithToken(page, gateway.adminUrl, ADMIN_TOKEN)
    await searchAgainShowsNewRecords(page, 'Requests', '[data-testid=row]', 1)
    await searchAgainShowsNewRecords(page, 'Audit', '.audit table.rows tbody tr', 2)
    expect(errors).toEqual([])
  } finally {
    await context.close()
  }
})
