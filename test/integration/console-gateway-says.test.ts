// What the console says when the gateway refuses it or is gone, each case a fault a probe found
// (what it saw is the comment above its describe block). One real chromium for the file; each case
// starts the in-process gateway it needs (helpers/console-gateway.ts's consoleConfig).
import { readFile, writeFile } from 'node:fs/promises'
import type { Browser } from 'playwright-core'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeAll, collectPageErrors, launchChromium, openPage, showPage, signInWithToken, submitToken } from '../helpers/browser.ts'
import { consoleConfig } from '../helpers/console-gateway.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

let browser: Browser

beforeAll(async () => {
  browser = await launchChromium()
}, 120_000)

afterAll(() => closeAll(browser))

/** A gateway of consoleConfig (its upstream never listens: no case sends traffic), started before a describe block's cases and closed after them. */
function gatewayPerBlock(adminToken: string | undefined): { gateway: TestGateway } {
  const started = {} as { gateway: TestGateway }
  beforeAll(async () => {
    started.gateway = await startTestGateway((dir) => consoleConfig(dir, adminToken, 'http://127.0.0.1:9'))
  })
  afterAll(() => closeAll(started.gateway))
  return started
}

// Found by a probe: on a gateway whose admin listener has no admin.token (and no sign-in), the admin API
// answers every token 401 "The admin API is disabled: configure admin.token to use it." The console's
// sign-in form said "That token is not valid for this gateway." instead, so an operator pasted token
// after token; the form now says the gateway's reason, and keeps its own words for a token that is
// merely wrong.
describe('a gateway without admin.token', () => {
  const on = gatewayPerBlock(undefined)

  it('the sign-in form says the admin API is disabled, not that the token is wrong', { timeout: 60_000 }, async () => {
    const { context, page } = await openPage(browser)
    const errors = collectPageErrors(page)
    try {
      await page.goto(on.gateway.adminUrl)
      await submitToken(page, 'any-token-at-all')
      expect(await page.locator('[role=alert]').innerText()).toBe('The admin API is disabled: configure admin.token to use it.')
      expect(errors).toEqual([])
    } finally {
      await context.close()
    }
  })
})

// Found by a probe: when a reload changed admin.token while the console was open with the old one, the
// next question was refused (401) and the sign-in page said "Your session ended: sign in again." — a
// token has no session that ends; the operator looked for an idle timeout. It now says the token is no
// longer accepted. The gateway's config file is rewritten and reloaded.
describe('an admin token a reload replaced', () => {
  const OLD_TOKEN = 'console-token-rotated-old-token-0123456789'
  const NEW_TOKEN = 'console-token-rotated-new-token-0123456789'
  const on = gatewayPerBlock(OLD_TOKEN)

  it('a console signed in with a token that a reload replaced says the token is no longer accepted, not that a session ended', { timeout: 60_000 }, async () => {
    const { gateway } = on
    const { context, page } = await openPage(browser)
    try {
      await signInWithToken(page, gateway.adminUrl, OLD_TOKEN)
      await showPage(page, gateway.adminUrl, 'requests')
      await writeFile(gateway.file, (await readFile(gateway.file, 'utf8')).replace(OLD_TOKEN, NEW_TOKEN))
      const reload = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${OLD_TOKEN}` } })
      expect(reload.statusCode).toBe(200)
      await reload.body.dump()
      await page.getByRole('link', { name: 'Audit' }).click() // the next page asks with the old token
      const said = page.locator('[data-testid=session-ended]')
      await said.waitFor()
      expect(await said.innerText()).toBe('The admin token is no longer accepted (changed or removed by a reload): sign in with the current one.')
    } finally {
      await context.close()
    }
  })
})

// Found by a probe: when the admin listener stopped answering (the gateway restarting, a network cut),
// every page's error read "Failed to fetch" — the browser's words, which say neither what failed nor
// what to do. The console now says the gateway did not answer. The gateway is shut down while the
// console is open.
describe('a gateway gone', () => {
  const ADMIN_TOKEN = 'console-gateway-gone-admin-token-0123456789'
  const on = gatewayPerBlock(ADMIN_TOKEN)

  it('a gateway that stopped answering is said to have stopped answering, not "Failed to fetch"', { timeout: 60_000 }, async () => {
    const { gateway } = on
    const { context, page } = await openPage(browser)
    try {
      await signInWithToken(page, gateway.adminUrl, ADMIN_TOKEN)
      await showPage(page, gateway.adminUrl, 'requests')
      await gateway.close()
      await page.fill('input[name=status]', '403')
      await page.click('button[type=submit]')
      const alert = page.locator('.requests [role=alert]')
      await expect.poll(() => alert.count()).toBe(1)
      expect(await alert.innerText()).toMatch(/^The gateway did not answer/)
      // Still signed in: nothing said the credential was wrong.
      expect(await page.locator('[data-testid=access]').count()).toBe(1)
    } finally {
      await context.close()
    }
  })
})
