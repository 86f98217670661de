// Found by a probe: on a gateway whose admin listener has no admin.token (and no sign-in), the admin API
// answers every token 401 "The admin API is disabled: configure admin.token to use it." The console's
// sign-in form said "That token is not valid for this gateway." instead, so an operator pasted token
// after token; the form now says the gateway's reason, and keeps its own words for a token that is
// merely wrong. A real `bouncer serve` and real chromium.
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { closeAll, collectPageErrors, launchChromium, openPage, submitToken } from '../helpers/browser.ts'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'

let gateway: ServeProcess & { dir: string }
let browser: Browser

beforeAll(async () => {
  gateway = await serveConfig(() => ({
    server: { listen: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0' },
    telemetry: { log_level: 'silent' },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
  }), { startTimeout: 90_000 })
  browser = await launchChromium()
}, 120_000)

afterAll(() => closeAll(browser, gateway))

it('the sign-in form says the admin API is disabled, not that the token is wrong', { timeout: 60_000 }, async () => {
  const { context, page } = await openPage(browser)
  const errors = collectPageErrors(page)
  try {
    await page.goto(gateway.adminUrl)
    await submitToken(page, 'any-token-at-all')
    expect(await page.locator('[role=alert]').innerText()).toBe('The admin API is disabled: configure admin.token to use it.')
    expect(errors).toEqual([])
  } finally {
    await context.close()
  }
})
