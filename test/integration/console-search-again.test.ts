// Found by a probe: on the Requests and Audit pages opened without filters (#/requests, as the nav
// links open them), pressing Search with the form as it was did nothing — the address became
// #/requests?since=24h, the same search, so nothing was asked again — and the records written since
// never appeared: an operator watching for the next 403 saw a frozen list. The same search now asks
// again, from the newest page. Real chromium, a real gateway and SQLite log.
import type { Browser, Page } from 'playwright-core'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { collectPageErrors, openPage, signInWithToken, waitForAuditRecords } from '../helpers/browser.ts'
import { startConsoleGateway, type ConsoleGateway } from '../helpers/console-gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'

const ADMIN_TOKEN = 'console-search-again-admin-token-0123456789'

let setup: ConsoleGateway
let gateway: TestGateway
let browser: Browser
const get = async (path: string) => (await request(`${gateway.url}${path}`)).body.dump()

beforeAll(async () => {
  setup = await startConsoleGateway(ADMIN_TOKEN, ['/open'])
  ;({ gateway, browser } = setup)
}, 120_000)

afterAll(() => setup?.close())

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
