// A gateway whose console a browser test drives: an admin token, an SQLite audit log, a public
// `open` route and a `closed` one to a real upstream, some traffic already audited, and Chromium.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { request } from 'undici'
import { closeAll, launchChromium, waitForAuditRecords } from './browser.ts'
import { startTestGateway, type TestGateway } from './gateway.ts'
import { startUpstream, type TestUpstream } from './upstream.ts'

export interface ConsoleGateway {
  gateway: TestGateway
  upstream: TestUpstream
  browser: Browser
  close(): Promise<void>
}

/** `traffic`: paths requested (each once, in order) and waited for in the audit log before it answers. */
export async function startConsoleGateway(name: string, adminToken: string, traffic: readonly string[]): Promise<ConsoleGateway> {
  const upstream = await startUpstream()
  const dir = await mkdtemp(join(tmpdir(), `bouncer-${name}-`))
  const gateway = await startTestGateway({
    admin: { token: adminToken },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    telemetry: { log_level: 'silent' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [
      { id: 'open', methods: ['GET'], path: '/open', upstream: 'api', public: true },
      { id: 'closed', methods: ['GET'], path: '/closed', upstream: 'api' },
    ],
  })
  for (const path of traffic) await (await request(`${gateway.url}${path}`)).body.dump()
  if (traffic.length > 0) await waitForAuditRecords(gateway.adminUrl, adminToken, traffic.length)
  const browser = await launchChromium()
  return { gateway, upstream, browser, close: () => closeAll(browser, gateway, upstream, () => rm(dir, { recursive: true, force: true })) }
}
