// A gateway whose console a browser test drives: an admin token, an SQLite audit log, a public
// `open` route and a `closed` one to a real upstream, some traffic already audited.
import { join } from 'node:path'
import { request } from 'undici'
import { closeAll, waitForAuditRecords } from './browser.ts'
import { startTestGateway, type TestGateway } from './gateway.ts'
import { startUpstream, type TestUpstream } from './upstream.ts'

export interface ConsoleGateway {
  gateway: TestGateway
  upstream: TestUpstream
  close(): Promise<void>
}

/**
 * What a console test's config has for the console: the admin listener (on any free port) with
 * `adminToken` (none: the admin API is disabled), an SQLite audit log in `dir` flushed every 10 ms
 * (the gateway's own dir: startTestGateway's config as a function of it), and no log lines.
 */
export function consoleSettings(dir: string, adminToken?: string): Record<string, unknown> {
  return {
    admin: { listen: '127.0.0.1:0', ...(adminToken === undefined ? {} : { token: adminToken }) },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    telemetry: { log_level: 'silent' },
  }
}

/** consoleSettings, and a public GET route `open` and a `closed` one (no caller is allowed it) to upstream `api` at `upstreamUrl`. */
export function consoleConfig(dir: string, adminToken: string | undefined, upstreamUrl: string): Record<string, unknown> {
  return {
    ...consoleSettings(dir, adminToken),
    upstreams: [{ name: 'api', url: upstreamUrl }],
    routes: [
      { id: 'open', methods: ['GET'], path: '/open', upstream: 'api', public: true },
      { id: 'closed', methods: ['GET'], path: '/closed', upstream: 'api' },
    ],
  }
}

/** `traffic`: paths requested (each once, in order) and waited for in the audit log before it answers. */
export async function startConsoleGateway(adminToken: string, traffic: readonly string[]): Promise<ConsoleGateway> {
  const upstream = await startUpstream()
  const gateway = await startTestGateway((dir) => consoleConfig(dir, adminToken, upstream.url))
  for (const path of traffic) await (await request(`${gateway.url}${path}`)).body.dump()
  if (traffic.length > 0) await waitForAuditRecords(gateway.adminUrl, adminToken, traffic.length)
  return { gateway, upstream, close: () => closeAll(gateway, upstream) }
}
