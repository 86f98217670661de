// The console's Audit page with server.workers: 2 (a real `bouncer serve`, a real browser): each
// worker writes its own chain, and the page shows every one of them, not the first as "this
// gateway's chain".
import type { Browser } from 'playwright-core'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { AuditHead } from '../../src/audit/chain-shapes.ts'
import { closeAll, launchChromium, openPage, signInWithToken } from '../helpers/browser.ts'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'
import { consoleSettings } from '../helpers/console-gateway.ts'
import { freshRequest } from '../helpers/fresh.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'console-workers-admin-token-0123456789'

let upstream: TestUpstream
let gateway: ServeProcess & { dir: string }
let browser: Browser

async function head(): Promise<AuditHead | null> {
  const res = await request(`${gateway.adminUrl}/api/audit/head`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  if (res.statusCode !== 200) return (await res.body.dump(), null)
  return (await res.body.json()) as AuditHead
}

beforeAll(async () => {
  upstream = await startUpstream()
  gateway = await serveConfig((dir) => ({
    ...consoleSettings(dir, ADMIN_TOKEN),
    server: { listen: '127.0.0.1:0', workers: 2, shutdown_timeout: '5s' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
  }), { startTimeout: 90_000 })
  // Fresh connections: the kernel hands each to either worker, until both have written records.
  await waitFor(async () => {
    await Promise.all(Array.from({ length: 8 }, () => freshRequest(`${gateway.url}/open`)))
    const now = await head()
    return (now?.workers?.length ?? 0) === 2 && (now?.workers ?? []).every((w) => w.head.count > 0)
  }, 'records in both workers\' chains', 30_000)
  browser = await launchChromium()
}, 120_000)

afterAll(() => closeAll(browser, gateway, upstream))

it('the Audit page shows each worker\'s chain', { timeout: 60_000 }, async () => {
  const { context, page } = await openPage(browser, { viewport: { width: 1280, height: 800 } })
  try {
    await signInWithToken(page, gateway.adminUrl, ADMIN_TOKEN)
    await page.goto(`${gateway.adminUrl}/#/audit`)
    const panel = page.locator('.panel', { hasText: 'The chain' })
    await expect.poll(() => panel.innerText()).toMatch(/records, head/)
    const workers = (await head())?.workers ?? []
    expect(workers).toHaveLength(2)
    // Every worker's chain, each with its own head, not the first alone.
    for (const w of workers) expect(await panel.innerText()).toContain(`${w.chain}: ${w.head.count.toLocaleString('en')} records, head ${w.head.hash.slice(0, 16)}…`)
    expect(await panel.locator('dt').allInnerTexts()).toEqual(workers.flatMap((w) => [`Worker ${w.worker}'s chain`, 'Latest checkpoint']))
  } finally {
    await context.close()
  }
})
