// Aggregated MCP servers: server-everything and an SDK-built server behind the gateway, their tools
// named SERVER__TOOL, their credentials injected by the gateway (never the agent's token), their
// list changes followed, progress streamed back to the agent.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { auditRows, connect, MCP_RESOURCE, mcpTestConfig } from '../helpers/mcp.ts'
import { startChangingServer, startEverything, type ChangingMcpServer, type RunningMcpServer } from '../helpers/mcp-servers.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let everything: RunningMcpServer
let tickets: ChangingMcpServer
let gateway: TestGateway
let dir: string
let agentToken: string
let reporterToken: string
let config: ReturnType<typeof mcpTestConfig>

beforeAll(async () => {
  ;[idp, upstream, everything, tickets] = await Promise.all([startIdentityProvider(), startUpstream(), startEverything(), startChangingServer()])
  dir = await mkdtemp(join(tmpdir(), 'bouncer-mcp-servers-'))
  config = mcpTestConfig(idp.issuer, upstream.url, dir, {
    servers: [
      { name: 'everything', url: everything.url },
      { name: 'tickets', url: tickets.url, headers: { 'X-Tickets-Key': 'tickets-key-0123' }, max_call_time: '3s' },
    ],
    log_arguments: true,
  })
  // The agent may call the tickets server's tools only.
  config.policies[0]!.statements.push({ sid: 'AgentTickets', effect: 'allow', actions: ['call'], routes: ['mcp:tickets__*'] })
  gateway = await startTestGateway(config)
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'keys', 20_000)
  agentToken = await idp.token('analytics-agent', { resource: MCP_RESOURCE })
  reporterToken = await idp.token('looker-reports', { resource: MCP_RESOURCE })
}, 90_000)

afterAll(async () => {
  await gateway?.close()
  await Promise.all([upstream?.close(), everything?.close(), tickets?.close(), idp?.stop()])
  await rm(dir, { recursive: true, force: true })
})

describe('aggregated MCP servers', () => {
  it('lists every server\'s tools as SERVER__TOOL, beside the route tools, as far as the role allows', async () => {
    const reporter = await connect(`${gateway.url}/mcp`, reporterToken, '2025-11-25')
    const agent = await connect(`${gateway.url}/mcp`, agentToken, '2025-11-25')
    try {
      const all = (await reporter.listTools()).tools.map((t) => t.name)
      expect(all).toEqual(expect.arrayContaining(['get_daily_report', 'list_customers', 'everything__echo', 'everything__get-sum', 'tickets__alpha', 'tickets__slow']))
      expect((await agent.listTools()).tools.map((t) => t.name)).toEqual(['get_daily_report', 'tickets__alpha', 'tickets__slow', 'tickets__endless'])
    } finally {
      await Promise.all([reporter.close(), agent.close()])
    }
  }, 60_000)

  it('calls a server\'s tool with the gateway\'s credentials for it, never the agent\'s token, audited', async () => {
    const agent = await connect(`${gateway.url}/mcp`, agentToken, '2026-07-28')
    try {
      const result = await agent.callTool({ name: 'tickets__alpha', arguments: { note: 'ship it', password: 'hunter2' } })
      expect(result.content).toEqual([{ type: 'text', text: 'alpha done' }])
      expect(tickets.requests.length).toBeGreaterThan(0)
      for (const headers of tickets.requests) {
        expect(headers['x-tickets-key']).toBe('tickets-key-0123')
        expect(JSON.stringify(headers)).not.toContain(agentToken)
        expect(headers.authorization).toBeUndefined()
      }
      let rows: Record<string, unknown>[] = []
      await waitFor(() => (rows = auditRows(join(dir, 'audit.db'), `tool = 'tickets__alpha'`)).length === 1, 'the audit record', 20_000)
      expect(rows[0]).toMatchObject({ route: 'mcp:tickets__alpha', subject: 'analytics-agent', decision: 'allow', upstream: 'mcp:tickets' })
      expect(rows[0]!.args_sha256).toMatch(/^[0-9a-f]{64}$/)
      // mcp.log_arguments: true — the arguments, with the secret redacted.
      expect(JSON.parse(rows[0]!.args as string)).toEqual({ note: 'ship it', password: '[redacted]' })
    } finally {
      await agent.close()
    }
  }, 60_000)

  it('passes server-everything\'s results through', async () => {
    const reporter = await connect(`${gateway.url}/mcp`, reporterToken, '2025-06-18')
    try {
      expect(await reporter.callTool({ name: 'everything__echo', arguments: { message: 'hi' } })).toMatchObject({ content: [{ type: 'text', text: 'Echo: hi' }] })
      expect(await reporter.callTool({ name: 'everything__get-sum', arguments: { a: 2, b: 3 } })).toMatchObject({ content: [{ type: 'text', text: 'The sum of 2 and 3 is 5.' }] })
    } finally {
      await reporter.close()
    }
  }, 60_000)

  it('streams a server\'s progress back to the agent while the call runs', async () => {
    const agent = await connect(`${gateway.url}/mcp`, agentToken, '2025-11-25')
    try {
      const progress: number[] = []
      const result = await agent.callTool({ name: 'tickets__slow', arguments: {} }, { onprogress: (p) => void progress.push(p.progress) })
      expect(result.content).toEqual([{ type: 'text', text: 'slow done' }])
      expect(progress).toEqual([1, 2, 3])
    } finally {
      await agent.close()
    }
  }, 60_000)

  it('cancels a call that reports progress for ever at the server\'s max_call_time, and tells the agent why', async () => {
    const agent = await connect(`${gateway.url}/mcp`, agentToken, '2025-11-25')
    try {
      const progress: number[] = []
      const started = Date.now()
      const result = await agent.callTool({ name: 'tickets__endless', arguments: {} }, { onprogress: (p) => void progress.push(p.progress), timeout: 30_000, resetTimeoutOnProgress: true })
      const took = Date.now() - started
      expect(result.isError).toBe(true)
      expect(result.content).toEqual([{ type: 'text', text: "The MCP server tickets failed: the call ran longer than the server's max_call_time (3 s) and was cancelled" }])
      expect(took).toBeGreaterThanOrEqual(2_900)
      expect(took).toBeLessThan(15_000)
      expect(progress.length).toBeGreaterThan(3) // it kept reporting; the reports did not keep it alive
      await waitFor(() => tickets.cancelled.includes('endless'), 'the server told to cancel the call')
      let rows: Record<string, unknown>[] = []
      await waitFor(() => (rows = auditRows(join(dir, 'audit.db'), `tool = 'tickets__endless'`)).length === 1, 'the audit record', 20_000)
      expect(rows[0]).toMatchObject({ decision: 'error', code: 'upstream_timeout', status: 504 })
    } finally {
      await agent.close()
    }
  }, 60_000)

  it('an agent that cancels its call: the server is told, and the record says the agent left (499), not a server failure', async () => {
    const agent = await connect(`${gateway.url}/mcp`, agentToken, '2025-11-25')
    try {
      const cancelledBefore = tickets.cancelled.length
      const abandon = new AbortController()
      const call = agent.callTool({ name: 'tickets__endless', arguments: {} }, { signal: abandon.signal, onprogress: () => abandon.abort(new Error('the agent gave up')), timeout: 30_000 })
      await expect(call).rejects.toThrow('the agent gave up')
      await waitFor(() => tickets.cancelled.length > cancelledBefore, 'the server told to cancel the call')
      let rows: Record<string, unknown>[] = []
      await waitFor(() => (rows = auditRows(join(dir, 'audit.db'), `tool = 'tickets__endless' AND status = 499`)).length === 1, 'the audit record', 20_000)
      expect(rows[0]).toMatchObject({ decision: 'allow', code: null, upstream: 'mcp:tickets', subject: 'analytics-agent' })
      expect(rows[0]!.detail).toBe('The call was given up before MCP server tickets answered: the agent cancelled it, closed its connection, or its session ended.')
    } finally {
      await agent.close()
    }
  }, 60_000)

  it('follows a server\'s tools/list_changed, and tells a 2025-era client in its session', async () => {
    const agent = await connect(`${gateway.url}/mcp`, agentToken, '2025-11-25')
    let told = false
    agent.setNotificationHandler('notifications/tools/list_changed', () => {
      told = true
    })
    try {
      await agent.listTools() // the session's GET stream is open by now
      tickets.addTool('beta')
      await waitFor(() => told, 'notifications/tools/list_changed from the gateway', 30_000)
      await waitFor(async () => (await agent.listTools()).tools.some((t) => t.name === 'tickets__beta'), 'tickets__beta listed', 30_000)
      expect(await agent.callTool({ name: 'tickets__beta', arguments: {} })).toMatchObject({ content: [{ type: 'text', text: 'beta done' }] })
    } finally {
      await agent.close()
    }
  }, 60_000)

  it('stops passing a 2025-era session through once a reload leaves the transparent mode', async () => {
    // Transparent: the one server, unprefixed, its resources passed through to callers with `call` on mcp:resources.
    await gateway.writeConfig({ ...config, mcp: { ...config.mcp, servers: [{ name: 'everything', url: everything.url, prefix: false }] } })
    expect((await gateway.reload()).ok).toBe(true)
    const reporter = await connect(`${gateway.url}/mcp`, reporterToken, '2025-11-25')
    const agent = await connect(`${gateway.url}/mcp`, agentToken, '2025-11-25')
    try {
      expect((await reporter.listResources()).resources.length).toBeGreaterThan(0)
      // The server's log level: for callers allowed mcp:logging (the reporter holds mcp:*), not for the agent.
      await expect(reporter.setLoggingLevel('debug')).resolves.toBeDefined()
      await expect(agent.setLoggingLevel('debug')).rejects.toThrow(/Not allowed: mcp:logging/)
      await gateway.writeConfig(config)
      expect((await gateway.reload()).ok).toBe(true)
      // The same session, now answered from a config with no server to pass through to.
      await expect(reporter.listResources()).rejects.toThrow(/initialize again/)
    } finally {
      await reporter.close()
      await agent.close()
      await gateway.writeConfig(config)
      expect((await gateway.reload()).ok).toBe(true)
    }
  }, 60_000)
})
