// Found by a probe: the Audit page kept its search in the page's memory only, so a reload lost it, back
// and forward did nothing, and a link to a search (#/audit?status=401, sent to a colleague explaining a
// 401) opened the last 24 hours unfiltered, whose export was not the search shared either. The search
// now lives in the address, as on the Requests page. Real chromium, a real gateway and SQLite log.
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { collectPageErrors, openPage, showPage, signInWithToken } from '../helpers/browser.ts'
import { startConsoleGateway, type ConsoleGateway } from '../helpers/console-gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'

const ADMIN_TOKEN = 'console-audit-address-admin-token-0123456789'

let setup: ConsoleGateway
let gateway: TestGateway
let browser: Browser

beforeAll(async () => {
  setup = await startConsoleGateway(ADMIN_TOKEN, ['/open', '/closed', '/open', '/closed', '/open'])
  ;({ gateway, browser } = setup)
}, 120_000)

afterAll(() => setup?.close())

/** The status column of the Audit page's rows, once they are those of `expected`'s length. */
async function statuses(page: Page, length: number): Promise<string[]> {
  const cells = page.locator('.audit table.rows tbody tr td:nth-child(2)')
  await expect.poll(() => cells.count()).toBe(length)
  return cells.allInnerTexts()
}

it('a search on the Audit page is in the address: a link opens it, a reload keeps it, back and forward step through searches', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(browser, { viewport: { width: 1280, height: 800 } })
  const errors = collectPageErrors(page)
  try {
    await signInWithToken(page, gateway.adminUrl, ADMIN_TOKEN)
    await showPage(page, gateway.adminUrl, 'audit?since=1h&status=401')
    expect(await statuses(page, 2)).toEqual(['401', '401'])
    expect(await page.inputValue('.audit input[name=status]')).toBe('401')

    await page.fill('.audit input[name=status]', '200')
    await page.click('.audit button[type=submit]')
    expect(await statuses(page, 3)).toEqual(['200', '200', '200'])
    expect(new URL(page.url()).hash).toBe('#/audit?since=1h&status=200')

    await page.reload()
    await page.waitForSelector('[data-ready=true]')
    expect(await statuses(page, 3)).toEqual(['200', '200', '200'])
    await page.goBack()
    expect(await statuses(page, 2)).toEqual(['401', '401'])
    expect(await page.inputValue('.audit input[name=status]')).toBe('401')
    expect(errors).toEqual([])
  } finally {
    await context.close()
  }
})
