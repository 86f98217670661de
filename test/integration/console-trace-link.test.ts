// Found by a probe: the trace of a request opened on the Requests page lived in the page's memory only,
// so a security engineer explaining a 403 could not send a link to it, a reload closed it, and back
// did not close it (it left the page instead). The open trace is now in the address with the search
// (#/requests?status=401&trace=ID&at=TIME). Real chromium, a real gateway and SQLite log.
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { collectPageErrors, openPage, showPage, signInWithToken, submitToken } from '../helpers/browser.ts'
import { startConsoleGateway, type ConsoleGateway } from '../helpers/console-gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'

const ADMIN_TOKEN = 'console-trace-link-admin-token-0123456789'

let setup: ConsoleGateway
let gateway: TestGateway
let browser: Browser

beforeAll(async () => {
  setup = await startConsoleGateway(ADMIN_TOKEN, ['/open', '/closed'])
  ;({ gateway, browser } = setup)
}, 120_000)

afterAll(() => setup?.close())

it('an open trace is in the address: a link opens it, a reload keeps it, back closes it', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(browser, { viewport: { width: 1280, height: 800 } })
  const errors = collectPageErrors(page)
  try {
    await signInWithToken(page, gateway.adminUrl, ADMIN_TOKEN)
    await showPage(page, gateway.adminUrl, 'requests?status=401')
    await page.getByRole('button', { name: 'GET /closed' }).click()
    const trace = page.locator('[data-testid=trace]')
    await expect.poll(() => trace.innerText()).toMatch(/401 deny/)
    const link = page.url()
    expect(new URL(link).hash).toMatch(/^#\/requests\?.*status=401.*&trace=[0-9a-f-]+&at=/)

    await page.reload()
    await expect.poll(() => trace.innerText()).toMatch(/401 deny/)
    expect(await page.locator('.panel h2', { hasText: 'Trace of' }).innerText()).toBe('Trace of GET /closed')

    // The link, sent to a colleague: it opens at the sign-in, then on the trace.
    const other = await context.newPage()
    await other.goto(link)
    await submitToken(other, ADMIN_TOKEN)
    await expect.poll(() => other.locator('[data-testid=trace]').innerText()).toMatch(/401 deny/)
    await other.close()

    await page.goBack()
    await trace.waitFor({ state: 'detached' })
    expect(new URL(page.url()).hash).toBe('#/requests?status=401')
    expect(errors).toEqual([])
  } finally {
    await context.close()
  }
})
