// The MCP endpoint end to end: the official SDK's client (each protocol version it speaks) against
// a real gateway, tokens from a real OpenID provider, a real upstream behind the route tools.
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { auditRows, connect, MCP_RESOURCE, mcpTestConfig, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import type { TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let setup: McpTestSetup
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let agentToken: string
let reporterToken: string
let dir: string

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp')
  ;({ idp, upstream, gateway, dir } = setup)
  agentToken = await idp.token('analytics-agent', { resource: MCP_RESOURCE })
  reporterToken = await idp.token('looker-reports', { resource: MCP_RESOURCE })
}, 60_000)

afterAll(() => setup?.close())

const initialize = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'curl', version: '1' } } })
const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

describe('the MCP endpoint as a resource server', () => {
  it('answers an unauthenticated request 401 with resource_metadata, and serves the metadata', async () => {
    const res = await request(`${gateway.url}/mcp`, { method: 'POST', headers: mcpHeaders, body: initialize })
    expect(res.statusCode).toBe(401)
    expect(res.headers['www-authenticate']).toBe('Bearer resource_metadata="https://mcp.bouncer.test/.well-known/oauth-protected-resource/mcp"')
    await res.body.dump()
    const meta = await request(`${gateway.url}/.well-known/oauth-protected-resource/mcp`)
    expect(meta.statusCode).toBe(200)
    expect(await meta.body.json()).toMatchObject({ resource: MCP_RESOURCE, authorization_servers: [idp.issuer], bearer_methods_supported: ['header'] })
  })

  it('refuses a token issued for another audience (RFC 8707), even from a trusted issuer', async () => {
    const apiToken = await idp.token('analytics-agent') // aud: the HTTP API's
    const res = await request(`${gateway.url}/mcp`, { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${apiToken}` }, body: initialize })
    expect(res.statusCode).toBe(401)
    expect(res.headers['www-authenticate']).toContain('error="invalid_token"')
    expect(res.headers['www-authenticate']).toContain('resource_metadata=')
    expect(await res.body.json()).toMatchObject({ code: 'audience_mismatch' })
  })

  it('refuses a browser Origin that is not the resource\'s (DNS rebinding)', async () => {
    const res = await request(`${gateway.url}/mcp`, { method: 'POST', headers: { ...mcpHeaders, origin: 'http://evil.example', authorization: `Bearer ${agentToken}` }, body: initialize })
    expect(res.statusCode).toBe(403)
    expect(await res.body.json()).toMatchObject({ code: 'cors_origin_denied' })
  })

  it('answers 403 insufficient_scope when the token lacks a required scope', async () => {
    const other = await startTestGateway(mcpTestConfig(idp.issuer, upstream.url, join(dir, 'scoped'), { scopes: ['reports:read', 'tickets:write'] }))
    try {
      await waitFor(() => other.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'keys', 20_000)
      const res = await request(`${other.url}/mcp`, { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${agentToken}` }, body: initialize })
      expect(res.statusCode).toBe(403)
      expect(res.headers['www-authenticate']).toBe('Bearer resource_metadata="https://mcp.bouncer.test/.well-known/oauth-protected-resource/mcp", scope="reports:read tickets:write", error="insufficient_scope"')
      await res.body.dump()
    } finally {
      await other.close()
    }
  }, 60_000)
})

describe('sessions of 2025-era clients', () => {
  it('belong to the identity that opened them: another token with the session id gets 404', async () => {
    const opened = await request(`${gateway.url}/mcp`, { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${agentToken}` }, body: initialize })
    expect(opened.statusCode).toBe(200)
    const session = opened.headers['mcp-session-id'] as string
    // A UUID sealed for its endpoint and owner (sessions.ts): any worker of the gateway can open it again, for its owner only.
    expect(session).toMatch(/^[0-9a-f-]{36}\.[A-Za-z0-9_-]{22}$/)
    await opened.body.dump()
    const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' })
    const sessionHeaders = { ...mcpHeaders, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' }
    const own = await request(`${gateway.url}/mcp`, { method: 'POST', headers: { ...sessionHeaders, authorization: `Bearer ${agentToken}` }, body: list })
    expect(own.statusCode).toBe(200)
    expect(await own.body.text()).toContain('get_daily_report')
    const other = await request(`${gateway.url}/mcp`, { method: 'POST', headers: { ...sessionHeaders, authorization: `Bearer ${reporterToken}` }, body: list })
    expect(other.statusCode).toBe(404)
    await other.body.dump()
    const unknown = await request(`${gateway.url}/mcp`, { method: 'POST', headers: { ...sessionHeaders, 'mcp-session-id': crypto.randomUUID(), authorization: `Bearer ${agentToken}` }, body: list })
    expect(unknown.statusCode).toBe(404)
    await unknown.body.dump()
    // A made-up seal opens nothing either.
    const forged = await request(`${gateway.url}/mcp`, { method: 'POST', headers: { ...sessionHeaders, 'mcp-session-id': `${crypto.randomUUID()}.${'A'.repeat(22)}`, authorization: `Bearer ${agentToken}` }, body: list })
    expect(forged.statusCode).toBe(404)
    await forged.body.dump()
  })

  it('a session the client ended (DELETE) stays ended, though its sealed id would open it again', async () => {
    const opened = await request(`${gateway.url}/mcp`, { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${agentToken}` }, body: initialize })
    const session = opened.headers['mcp-session-id'] as string
    await opened.body.dump()
    const sessionHeaders = { ...mcpHeaders, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18', authorization: `Bearer ${agentToken}` }
    const ended = await request(`${gateway.url}/mcp`, { method: 'DELETE', headers: sessionHeaders })
    expect(ended.statusCode).toBe(200)
    await ended.body.dump()
    // Nor under another spelling of the same seal: base64url decoding would take padding, stray
    // characters, or a last character whose unused bits differ.
    const last = session.at(-1) as string
    const sibling = last === 'A' ? 'B' : 'A'
    for (const spelling of [session, `${session}==`, `${session}!`, `${session.slice(0, -1)}${sibling}`, session.toUpperCase()]) {
      const after = await request(`${gateway.url}/mcp`, { method: 'POST', headers: { ...sessionHeaders, 'mcp-session-id': spelling }, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) })
      expect(after.statusCode, spelling).toBe(404)
      await after.body.dump()
    }
  })
})

describe('JSON-RPC batches', () => {
  const batch = JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { jsonrpc: '2.0', id: 2, method: 'ping' }])
  const post = (headers: Record<string, string>, body = batch) => request(`${gateway.url}/mcp`, { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${agentToken}`, ...headers }, body })

  it('are refused as an invalid request (-32600) from a client of 2025-06-18 or later, which has none, with a session or without', async () => {
    // Found by a probe: the SDK served them to every 2025-era client.
    for (const version of ['2025-06-18', '2025-11-25']) {
      const stateless = await post({ 'mcp-protocol-version': version })
      expect(stateless.statusCode, version).toBe(400)
      expect(await stateless.body.json()).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32600, message: expect.stringContaining('has no JSON-RPC batches') } })
    }
    const opened = await post({}, initialize)
    const session = opened.headers['mcp-session-id'] as string
    await opened.body.dump()
    const inSession = await post({ 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' })
    expect(inSession.statusCode).toBe(400)
    expect(await inSession.body.json()).toMatchObject({ error: { code: -32600 } })
    const batchedInitialize = await post({}, `[${initialize}]`)
    expect(batchedInitialize.statusCode).toBe(400)
    expect(await batchedInitialize.body.json()).toMatchObject({ error: { code: -32600 } })
  })

  it('are still served to a 2025-03-26 client, whose revision has them', async () => {
    const answer = await post({ 'mcp-protocol-version': '2025-03-26' })
    expect(answer.statusCode).toBe(200)
    const text = await answer.body.text()
    expect(text).toContain('get_daily_report')
    expect(text).toContain('"id":2')
  })
})

describe('a 2025-era session across a config reload', () => {
  it('goes on: the same Mcp-Session-Id lists the reloaded tools, and its stream is told they changed', async () => {
    const opened = await request(`${gateway.url}/mcp`, { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${agentToken}` }, body: initialize })
    expect(opened.statusCode).toBe(200)
    await opened.body.dump()
    const sessionHeaders = { ...mcpHeaders, 'mcp-session-id': opened.headers['mcp-session-id'] as string, 'mcp-protocol-version': '2025-06-18', authorization: `Bearer ${agentToken}` }
    const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' })
    const before = await request(`${gateway.url}/mcp`, { method: 'POST', headers: sessionHeaders, body: list })
    expect(await before.body.text()).toContain('"get_daily_report"')

    // The session's notification stream, as a 2025-era client holds it: its head comes at once.
    const stream = await request(`${gateway.url}/mcp`, { method: 'GET', headers: { ...sessionHeaders, accept: 'text/event-stream' }, headersTimeout: 5_000 })
    expect(stream.statusCode).toBe(200)
    let heard = ''
    stream.body.on('data', (chunk: Buffer) => {
      heard += chunk.toString()
    })

    const config = mcpTestConfig(idp.issuer, upstream.url, dir)
    const tools = (config.mcp as { tools: Array<Record<string, unknown>> }).tools
    try {
      await gateway.writeConfig({ ...config, mcp: { ...(config.mcp as object), tools: tools.map((tool) => (tool.name === 'get_daily_report' ? { ...tool, description: 'Daily sales, as reloaded' } : tool)) } })
      expect((await gateway.reload()).ok).toBe(true)
      const after = await request(`${gateway.url}/mcp`, { method: 'POST', headers: sessionHeaders, body: list })
      expect(after.statusCode).toBe(200)
      const text = await after.body.text()
      expect(text).toContain('Daily sales, as reloaded')
      expect(text).not.toContain('Daily sales for a region')
      await waitFor(() => heard.includes('notifications/tools/list_changed'), 'tools/list_changed on the session\'s stream')
    } finally {
      stream.body.destroy()
      await gateway.writeConfig(config)
      expect((await gateway.reload()).ok).toBe(true)
    }
  })

  it('ends when a reload moves the endpoint: its stream closes, and the new path knows nothing of it', async () => {
    const opened = await request(`${gateway.url}/mcp`, { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${agentToken}` }, body: initialize })
    await opened.body.dump()
    const session = opened.headers['mcp-session-id'] as string
    const sessionHeaders = { ...mcpHeaders, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18', authorization: `Bearer ${agentToken}` }
    const stream = await request(`${gateway.url}/mcp`, { method: 'GET', headers: { ...sessionHeaders, accept: 'text/event-stream' }, headersTimeout: 5_000 })
    expect(stream.statusCode).toBe(200)
    const ended = new Promise<void>((resolve) => {
      stream.body.on('end', resolve).on('error', () => resolve()).on('close', resolve)
      stream.body.resume()
    })
    const config = mcpTestConfig(idp.issuer, upstream.url, dir)
    try {
      await gateway.writeConfig({ ...config, mcp: { ...(config.mcp as object), path: '/mcp-v2' } })
      expect((await gateway.reload()).ok).toBe(true)
      await ended
      const elsewhere = await request(`${gateway.url}/mcp-v2`, { method: 'POST', headers: sessionHeaders, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) })
      expect(elsewhere.statusCode).toBe(404)
      await elsewhere.body.dump()
    } finally {
      await gateway.writeConfig(config)
      expect((await gateway.reload()).ok).toBe(true)
    }
  })
})

describe.each(['2025-06-18', '2025-11-25', '2026-07-28'])('an MCP client of protocol %s', (version) => {
  it('lists only the tools its role may call, with a JSON Schema 2020-12 input and hints', async () => {
    const client = await connect(`${gateway.url}/mcp`, agentToken, version)
    try {
      const { tools } = await client.listTools()
      expect(tools.map((t) => t.name)).toEqual(['get_daily_report'])
      const tool = tools[0]!
      expect(tool.inputSchema).toMatchObject({
        $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', required: ['region'],
        properties: { region: { type: 'string' }, limit: { type: 'integer' } },
      })
      expect(tool.annotations).toMatchObject({ readOnlyHint: true, idempotentHint: true })
    } finally {
      await client.close()
    }
  })

  it('calls a route tool through the pipeline, without the client\'s token upstream, audited with tool and args_sha256', async () => {
    const client = await connect(`${gateway.url}/mcp`, agentToken, version)
    try {
      const before = upstream.received.length
      const result = await client.callTool({ name: 'get_daily_report', arguments: { region: `eu-${version}`, limit: 5 } })
      expect(result.isError).toBe(false)
      const echoed = result.structuredContent as { url: string; headers: Record<string, string> }
      expect(echoed.url).toBe(`/sales/daily/eu-${version}?limit=5`)
      expect(echoed.headers.authorization).toBeUndefined()
      expect(upstream.received.length).toBe(before + 1)
      expect(JSON.stringify(upstream.received.at(-1)?.headers)).not.toContain(agentToken)
      let rows: Record<string, unknown>[] = []
      await waitFor(() => (rows = auditRows(join(dir, 'audit.db'), `path = '/sales/daily/eu-${version}'`)).length === 1, 'the audit record', 20_000)
      expect(rows[0]).toMatchObject({ route: 'sales.daily', tool: 'get_daily_report', subject: 'analytics-agent', decision: 'allow', status: 200, args: null })
      expect(rows[0]!.args_sha256).toMatch(/^[0-9a-f]{64}$/)
    } finally {
      await client.close()
    }
  })

  it('refuses a tool its role may not call as unknown, and audits the refusal', async () => {
    const client = await connect(`${gateway.url}/mcp`, agentToken, version)
    try {
      await expect(client.callTool({ name: 'list_customers', arguments: { v: version } })).rejects.toThrow(/Unknown tool: list_customers/)
      let rows: Record<string, unknown>[] = []
      await waitFor(() => (rows = auditRows(join(dir, 'audit.db'), `route = 'mcp:list_customers' AND subject = 'analytics-agent'`)).length > 0, 'the refusal', 20_000)
      expect(rows.at(-1)).toMatchObject({ tool: 'list_customers', decision: 'deny', status: 403, code: 'policy_denied' })
    } finally {
      await client.close()
    }
  })
})

describe('a role that may read customers', () => {
  it('sees and calls both tools', async () => {
    const client = await connect(`${gateway.url}/mcp`, reporterToken, '2025-11-25')
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['get_daily_report', 'list_customers'])
      const result = await client.callTool({ name: 'list_customers', arguments: {} })
      expect((result.structuredContent as { url: string }).url).toBe('/sales/customers')
      await expect(client.callTool({ name: 'get_daily_report', arguments: { region: 'eu', bogus: 1 } })).rejects.toThrow(/unknown argument "bogus"/)
    } finally {
      await client.close()
    }
  })
})
