// Found by a probe: when the admin listener stopped answering (the gateway restarting, a network cut),
// every page's error read "Failed to fetch" — the browser's words, which say neither what failed nor
// what to do. The console now says the gateway did not answer. A real `bouncer serve`, stopped while
// the console is open in real chromium.
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { closeAll, launchChromium, openPage, showPage, signInWithToken } from '../helpers/browser.ts'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'

const ADMIN_TOKEN = 'console-gateway-gone-admin-token-0123456789'

let gateway: ServeProcess & { dir: string }
let browser: Browser

beforeAll(async () => {
  gateway = await serveConfig((dir) => ({
    admin: { listen: '127.0.0.1:0', token: ADMIN_TOKEN },
    audit: { sinks: [{ type: 'sqlite', path: `${dir}/audit.db` }], spill_dir: `${dir}/spill` },
    telemetry: { log_level: 'silent' },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
  }), { startTimeout: 90_000 })
  browser = await launchChromium()
}, 120_000)

afterAll(() => closeAll(browser, gateway))

it('a gateway that stopped answering is said to have stopped answering, not "Failed to fetch"', { timeout: 60_000 }, async () => {
  const { context, page } = await openPage(browser)
  try {
    await signInWithToken(page, gateway.adminUrl, ADMIN_TOKEN)
    await showPage(page, gateway.adminUrl, 'requests')
    await gateway.stop()
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
