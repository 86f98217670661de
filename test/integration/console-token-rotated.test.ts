// Found by a probe: when a reload changed admin.token while the console was open with the old one, the
// next question was refused (401) and the sign-in page said "Your session ended: sign in again." — a
// token has no session that ends; the operator looked for an idle timeout. It now says the token is no
// longer accepted. A real `bouncer serve` whose config file is rewritten and reloaded, real chromium.
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { closeAll, launchChromium, openPage, showPage, signInWithToken } from '../helpers/browser.ts'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'

const OLD_TOKEN = 'console-token-rotated-old-token-0123456789'
const NEW_TOKEN = 'console-token-rotated-new-token-0123456789'

let gateway: ServeProcess & { dir: string }
let browser: Browser

beforeAll(async () => {
  gateway = await serveConfig((dir) => ({
    admin: { listen: '127.0.0.1:0', token: OLD_TOKEN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill') },
    telemetry: { log_level: 'silent' },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
  }), { startTimeout: 90_000 })
  browser = await launchChromium()
}, 120_000)

afterAll(() => closeAll(browser, gateway))

it('a console signed in with a token that a reload replaced says the token is no longer accepted, not that a session ended', { timeout: 60_000 }, async () => {
  const { context, page } = await openPage(browser)
  try {
    await signInWithToken(page, gateway.adminUrl, OLD_TOKEN)
    await showPage(page, gateway.adminUrl, 'requests')
    const file = join(gateway.dir, 'bouncer.yaml')
    await writeFile(file, (await readFile(file, 'utf8')).replace(OLD_TOKEN, NEW_TOKEN))
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
