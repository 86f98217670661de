// What the MCP tests share: a gateway config with route tools, the SDK client for a protocol
// version, and the audit rows a test reads back.
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { DatabaseSync } from 'node:sqlite'
import { join } from 'node:path'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { startTestGateway, type TestGateway } from './gateway.ts'
import { AUDIENCE, DEFAULT_CLIENTS, startIdentityProvider, type ProviderOptions, type TestIdentityProvider } from './identity-provider.ts'
import { startUpstream, type TestUpstream } from './upstream.ts'
import { waitFor } from './wait.ts'

export const MCP_RESOURCE = 'https://mcp.bouncer.test/mcp'

/** The provider's clients with ops-oncall beside the default ones (an approver, a caller of its own role). */
export const WITH_OPS_ONCALL: ProviderOptions = { clients: [...DEFAULT_CLIENTS, { clientId: 'ops-oncall', secret: 'ops-oncall-secret-0123456789abcd' }] }

/** token_exchange where the agent (role agent) acts for a reporter (role reporter), its tokens for the MCP endpoint. */
export const AGENT_FOR_REPORTER = { issuer: 'https://mcp.bouncer.test', audiences: [MCP_RESOURCE], actors: [{ role: 'agent', delegated_roles: ['reporter'] }] }

export function mcpTestConfig(issuer: string, upstreamUrl: string, dir: string, mcp: Record<string, unknown> = {}) {
  return {
    issuers: [{ name: 'corp-sso', issuer, audiences: [AUDIENCE] }],
    roles: [
      { name: 'agent', assumed_by: [{ issuer: 'corp-sso', subject: 'analytics-agent' }], policies: ['agent'] },
      { name: 'reporter', assumed_by: [{ issuer: 'corp-sso', subject: 'looker-*' }], policies: ['reporter'] },
    ],
    policies: [
      {
        name: 'agent',
        statements: [
          { sid: 'AgentTools', effect: 'allow', actions: ['call'], routes: ['mcp:get_daily_report', 'mcp:list_customers'] },
          { sid: 'AgentDaily', effect: 'allow', actions: ['GET'], routes: ['sales.daily'] },
        ],
      },
      {
        name: 'reporter',
        statements: [
          { sid: 'ReporterTools', effect: 'allow', actions: ['call'], routes: ['mcp:*'] },
          { sid: 'ReporterSales', effect: 'allow', actions: ['GET'], routes: ['sales.*'] },
        ],
      },
    ],
    upstreams: [{ name: 'sales-api', url: upstreamUrl }],
    routes: [
      { id: 'sales.daily', methods: ['GET'], path: '/sales/daily/:region', upstream: 'sales-api' },
      { id: 'sales.customers', methods: ['GET'], path: '/sales/customers', upstream: 'sales-api' },
    ],
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    mcp: {
      path: '/mcp',
      resource: MCP_RESOURCE,
      tools: [
        { route: 'sales.daily', name: 'get_daily_report', description: 'Daily sales for a region', query: { limit: { type: 'integer', description: 'rows at most' } } },
        { route: 'sales.customers', name: 'list_customers' },
      ],
      approvals_store: { type: 'sqlite', path: join(dir, 'approvals.db') },
      ...mcp,
    },
  }
}

/** An SDK client on `version`, sending `headers` (and the token) with each request. */
export async function connect(url: string, token: string, version: string, headers: Record<string, string> = {}): Promise<Client> {
  const modern = version >= '2026-07-28'
  const client = new Client({ name: 'mcp-test', version: '1' }, modern ? { versionNegotiation: { mode: { pin: version } } } : { supportedProtocolVersions: [version] })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}`, ...headers } } }))
  return client
}

/** The audit log's rows; none while the audit worker has not yet created the file or its table (a loaded machine starts it late). */
export function auditRows(dbPath: string, where = '1 = 1'): Record<string, unknown>[] {
  if (!existsSync(dbPath)) return []
  const db = new DatabaseSync(dbPath, { readOnly: true, timeout: 5000 })
  try {
    const created = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_records'").get() !== undefined
    if (!created) return []
    return db.prepare(`SELECT * FROM audit_records WHERE ${where} ORDER BY time_ms, id`).all() as Record<string, unknown>[]
  } finally {
    db.close()
  }
}


export interface McpTestSetup {
  idp: TestIdentityProvider
  upstream: TestUpstream
  gateway: TestGateway
  dir: string
  close(): Promise<void>
}

/** The identity provider (of `options.idp`), an upstream and a gateway with mcpTestConfig (adjusted), its issuer's keys loaded. */
export async function startMcpTestGateway(name: string, adjust: (config: ReturnType<typeof mcpTestConfig>, dir: string) => Record<string, unknown> = (config) => config, options: { idp?: ProviderOptions } = {}): Promise<McpTestSetup> {
  const [idp, upstream] = await Promise.all([startIdentityProvider(options.idp), startUpstream()])
  const dir = await mkdtemp(join(tmpdir(), `bouncer-${name}-`))
  const gateway = await startTestGateway(adjust(mcpTestConfig(idp.issuer, upstream.url, dir), dir))
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'keys', 20_000)
  return {
    idp, upstream, gateway, dir,
    async close() {
      await gateway.close()
      await Promise.all([upstream.close(), idp.stop()])
      await rm(dir, { recursive: true, force: true })
    },
  }
}
