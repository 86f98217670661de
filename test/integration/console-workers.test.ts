// The console's Audit page with server.workers: 2 (a real `bouncer serve`, a real browser): each
// worker writes its own chain, and the page shows every one of them, not the first as "this
// gateway's chain". The command line's and the admin API's credential changes beside them too.
import { hostname, userInfo } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { AuditHead } from '../../src/audit/chain-shapes.ts'
import { verifyAudit } from '../../src/audit/index.ts'
import { main } from '../../src/cli/main.ts'
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
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') } },
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

it('a key made from the command line beside the workers, and revoked through the admin API, is audited in chains of their own, found by the console\'s search; every chain verifies', { timeout: 30_000 }, async () => {
  const log = join(gateway.dir, 'audit.db')
  const before = (await head())?.workers?.map((w) => w.head.count) ?? []
  // `bouncer keys create` in this process (main(), as bin/bouncer.js runs it), on the gateway's own config and audit log.
  await main(['node', 'bouncer', 'keys', 'create', '--config', join(gateway.dir, 'bouncer.yaml'), '--principal', 'beside-workers', '--reason', 'console-workers'])
  const code = process.exitCode
  process.exitCode = undefined
  expect(code ?? 0).toBe(0)
  const me = userInfo().username
  const found = await request(`${gateway.adminUrl}/api/audit?principal=${encodeURIComponent(me)}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  const records = (await found.body.json()) as Array<{ path: string; instance: string; detail: string }>
  expect(records).toEqual([expect.objectContaining({ path: 'bouncer keys create --principal beside-workers', instance: `cli:${hostname()}`, detail: expect.stringContaining('Reason: console-workers') })])
  // Revoked through the admin API (the primary passes it to a worker): a record in the admin chain of this host.
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }
  const keys = (await (await request(`${gateway.adminUrl}/api/keys`, { headers: auth })).body.json()) as Array<{ id: string; principal: string }>
  const keyId = keys.find((k) => k.principal === 'beside-workers')?.id as string
  // A client's own x-bouncer-admin-client is not believed: the primary says who called (it said '-': the worker's socket has no peer).
  const revoked = await request(`${gateway.adminUrl}/api/keys/${keyId}`, { method: 'DELETE', headers: { ...auth, 'x-bouncer-admin-client': '203.0.113.9' } })
  await revoked.body.dump()
  expect(revoked.statusCode).toBe(200)
  const byToken = (await (await request(`${gateway.adminUrl}/api/audit?principal=admin.token`, { headers: auth })).body.json()) as Array<Record<string, unknown>>
  expect(byToken).toEqual([expect.objectContaining({
    method: 'DELETE', path: `/api/keys/${keyId}`, credential: 'admin_token', client_id: keyId, instance: `admin:${hostname()}`, detail: `Revoked API key ${keyId} of principal beside-workers.`,
    source_ip: '127.0.0.1',
  })])
  // Both workers go on writing their own chains in the same file.
  await waitFor(async () => {
    await Promise.all(Array.from({ length: 8 }, () => freshRequest(`${gateway.url}/open`)))
    const now = (await head())?.workers ?? []
    return now.length === 2 && now.every((w, i) => w.head.count > (before[i] ?? 0))
  }, 'new records in both workers\' chains', 20_000)
  await waitFor(async () => (await verifyAudit({ type: 'sqlite', path: log })).chains === 4, 'the workers\' records stored')
  expect(await verifyAudit({ type: 'sqlite', path: log })).toMatchObject({ ok: true, chains: 4, problems: [] })
})
