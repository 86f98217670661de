// The MCP endpoint on helpers/mcp.ts's gateway as it is (startMcpTestGateway, nothing adjusted),
// each case a fault a probe or review found (what it saw is the comment above its describe block).
// Each case has a gateway, provider and audit log of its own, so the records it reads are its own.
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_INITIALIZE_PARAMS_BYTES } from '../../src/agents/mcp/sessions.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import type { TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

/** startMcpTestGateway's setup, started before a describe block's cases (its fields filled in then) and closed after them. */
function mcpGatewayPerBlock(): McpTestSetup {
  const setup = {} as McpTestSetup
  beforeAll(async () => {
    Object.assign(setup, await startMcpTestGateway('mcp-endpoint-edges'))
  }, 60_000)
  afterAll(() => setup.close?.())
  return setup
}

// The audit record of an MCP request (tools/list, initialize, a session's DELETE…) names the caller
// the endpoint authenticated: the endpoint is a public built-in route to the pipeline, and its
// records named nobody, so `bouncer audit --principal` missed every MCP request an agent made.
describe('the records of MCP requests', () => {
  const setup = mcpGatewayPerBlock()

  it('names the authenticated caller in the records of its MCP requests', async () => {
    const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('analytics-agent', { resource: MCP_RESOURCE }), '2025-11-25')
    try {
      expect((await client.listTools()).tools.length).toBeGreaterThan(0)
    } finally {
      await client.close()
    }
    const db = join(setup.dir, 'audit.db')
    // initialize, notifications/initialized, tools/list (and the DELETE of close): each a record.
    await waitFor(() => auditRows(db, "route = 'builtin/mcp'").length >= 3, 'the MCP requests\' records', 10_000)
    for (const row of auditRows(db, "route = 'builtin/mcp'")) {
      expect(row).toMatchObject({ subject: 'analytics-agent', issuer: setup.idp.issuer, credential: 'bearer', roles: '["agent"]' })
    }
  }, 60_000)
})

// A route tool's call refused by the pipeline before it authorized anything — arguments that make a
// bad path, or another route's path — is the agent's doing, and its audit record names the agent.
// It named nobody (no issuer, subject, credential or roles): an agent probing `..` through a tool
// was audited as an anonymous request.
describe('a route tool call refused before authorization', () => {
  const setup = mcpGatewayPerBlock()

  it('names the agent in the record of a tool call refused with bad_path', async () => {
    const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('analytics-agent', { resource: MCP_RESOURCE }), '2025-11-25')
    try {
      for (const region of ['..', 'a/b']) {
        const result = await client.callTool({ name: 'get_daily_report', arguments: { region } })
        expect(result.isError).toBe(true)
        expect(JSON.stringify(result.content)).toContain('bad_path')
      }
    } finally {
      await client.close()
    }
    const db = join(setup.dir, 'audit.db')
    await waitFor(() => auditRows(db, "code = 'bad_path'").length === 2, 'the two records', 10_000)
    for (const row of auditRows(db, "code = 'bad_path'")) {
      expect(row).toMatchObject({ tool: 'get_daily_report', subject: 'analytics-agent', issuer: setup.idp.issuer, credential: 'bearer', roles: '["agent"]', decision: 'deny', status: 400 })
    }
  }, 60_000)
})

// A route tool's call continues the agent's trace (SPEC "On the wire": the client's trace
// continued): the agent's traceparent reached neither the route's upstream nor the route's audit
// record, which began a new trace, so a tool call could not be followed from the agent's trace.
// The records of calls the pipeline does not carry (refused, held, a server's) had no trace at all.
describe('a route tool call and the agent\'s trace', () => {
  const TRACE_ID = '0af7651916cd43dd8448eb211c80319c'

  const setup = mcpGatewayPerBlock()

  it('carries the agent\'s traceparent into the route\'s request and its record', async () => {
    const client = new Client({ name: 'traced-agent', version: '1' }, { supportedProtocolVersions: ['2025-11-25'] })
    await client.connect(new StreamableHTTPClientTransport(new URL(`${setup.gateway.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${await setup.idp.token('analytics-agent', { resource: MCP_RESOURCE })}`, traceparent: `00-${TRACE_ID}-b7ad6b7169203331-01` } },
    }))
    try {
      const result = await client.callTool({ name: 'get_daily_report', arguments: { region: 'eu' } })
      expect(result.isError).toBe(false)
    } finally {
      await client.close()
    }
    const forwarded = setup.upstream.received.find((request) => request.url === '/sales/daily/eu')
    expect(String(forwarded?.headers.traceparent)).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`))
    const db = join(setup.dir, 'audit.db')
    await waitFor(() => auditRows(db, "route = 'sales.daily'").length === 1, 'the route\'s record', 10_000)
    expect(auditRows(db, "route = 'sales.daily'")[0]).toMatchObject({ tool: 'get_daily_report', trace_id: TRACE_ID })
  }, 60_000)

  // Found by an adversarial probe (tracing x MCP): an agent that sent no traceparent had its call's
  // route request begin a trace of its own, so the MCP request's record (and its spans) led nowhere
  // near the upstream's request; one sent was continued as a sibling of the MCP request, not a child.
  it('without a traceparent of the agent\'s, the route\'s request goes on in the MCP request\'s own trace', async () => {
    const token = await setup.idp.token('analytics-agent', { resource: MCP_RESOURCE })
    const post = async (body: unknown, headers: Record<string, string> = {}) => {
      const res = await request(`${setup.gateway.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...headers },
        body: JSON.stringify(body),
      })
      await res.body.dump()
      return res.headers
    }
    const initialized = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'untraced-agent', version: '1' } } })
    const session = { 'mcp-session-id': String(initialized['mcp-session-id']) }
    await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, session)
    await post({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'get_daily_report', arguments: { region: 'us' } } }, { ...session, 'x-request-id': 'untraced-call' })
    const db = join(setup.dir, 'audit.db')
    await waitFor(() => auditRows(db, "request_id = 'untraced-call'").length === 1 && auditRows(db, "route = 'sales.daily' AND path = '/sales/daily/us'").length === 1, 'both records', 10_000)
    const traceId = auditRows(db, "request_id = 'untraced-call'")[0]?.trace_id
    expect(traceId).toMatch(/^[0-9a-f]{32}$/)
    expect(auditRows(db, "route = 'sales.daily' AND path = '/sales/daily/us'")[0]).toMatchObject({ tool: 'get_daily_report', trace_id: traceId })
    const forwarded = setup.upstream.received.find((received) => received.url === '/sales/daily/us')
    expect(String(forwarded?.headers.traceparent).split('-')[1]).toBe(traceId)
  }, 60_000)

  it('puts the agent\'s trace in the record of a call it refuses itself', async () => {
    const client = new Client({ name: 'traced-agent', version: '1' }, { supportedProtocolVersions: ['2025-11-25'] })
    await client.connect(new StreamableHTTPClientTransport(new URL(`${setup.gateway.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${await setup.idp.token('analytics-agent', { resource: MCP_RESOURCE })}`, traceparent: `00-${TRACE_ID}-c7ad6b7169203331-01` } },
    }))
    try {
      await expect(client.callTool({ name: 'list_customers', arguments: {} })).rejects.toThrow(/Unknown tool/)
    } finally {
      await client.close()
    }
    const db = join(setup.dir, 'audit.db')
    await waitFor(() => auditRows(db, "route = 'mcp:list_customers'").length === 1, 'the refusal\'s record', 10_000)
    expect(auditRows(db, "route = 'mcp:list_customers'")[0]).toMatchObject({ code: 'policy_denied', trace_id: TRACE_ID })
  }, 60_000)
})

// Found by an adversarial probe (helper): an MCP session keeps its client's initialize params (clientInfo,
// capabilities) for as long as it lives, bounded only by max_body_bytes: 20 sessions opened with 2 MB of them each
// held 40 MB of heap, and one caller's 100 sessions could hold a gigabyte. Now the params are at most 64 KB.
describe('an MCP initialize request', () => {
  const setup = mcpGatewayPerBlock()

  const initialize = (pad: string) => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: { experimental: { pad: { x: pad } } }, clientInfo: { name: 'probe', version: '1' } } })

  async function post(body: string): Promise<Response> {
    const token = await setup.idp.token('looker-reports', { resource: MCP_RESOURCE })
    return fetch(`${setup.gateway.url}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body })
  }

  it('whose params are over 64 KB is refused 413 and opens no session; a usual one opens a session', async () => {
    const large = await post(initialize('A'.repeat(MAX_INITIALIZE_PARAMS_BYTES)))
    const problem = (await large.json()) as { code: string; detail: string }
    expect({ status: large.status, code: problem.code, session: large.headers.get('mcp-session-id') }).toEqual({ status: 413, code: 'payload_too_large', session: null })
    expect(problem.detail).toContain('at most 65536 bytes')
    const usual = await post(initialize('x'))
    await usual.text()
    expect(usual.status).toBe(200)
    expect(usual.headers.get('mcp-session-id')).toMatch(/^[0-9a-f-]{36}\.[A-Za-z0-9_-]{22}$/)
  }, 30_000)
})

// Found by an adversarial probe (helper): a tools/call whose arguments nest 200,000 deep overflowed
// the stack in the argument digest (JSON.parse takes any depth; canonicalJson recursed), answered
// -32603 and left no audit record: an agent could probe tools it may not call unrecorded.
describe('deeply nested tool arguments (2025-era request, no session)', () => {
  const setup = mcpGatewayPerBlock()
  let idp: TestIdentityProvider
  let upstream: TestUpstream
  let gateway: TestGateway
  let dir: string
  beforeAll(() => {
    ;({ idp, upstream, gateway, dir } = setup)
  })

  const DEPTH = 200_000
  const deep = `${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}`
  /** The digest of `{"x": deep}`: its canonical JSON is the text itself (no key to sort, no space). */
  const deepDigest = createHash('sha256').update(`{"x":${deep}}`).digest('hex')

  async function post(token: string, body: string): Promise<{ status: number; text: string }> {
    const res = await fetch(`${gateway.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
      body,
    })
    return { status: res.status, text: await res.text() }
  }

  it('are refused as invalid params, and the refusal is audited', async () => {
    const agent = await idp.token('analytics-agent', { resource: MCP_RESOURCE })
    // list_customers: the agent's role has no statement allowing it; get_daily_report it may call.
    for (const [id, tool] of [[7, 'list_customers'], [8, 'get_daily_report']] as const) {
      const answer = await post(agent, `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"${tool}","arguments":{"x":${deep}}}}`)
      expect(answer.text).toContain('-32602')
      expect(answer.text).toContain('nest deeper than 64 levels')
      await waitFor(() => auditRows(join(dir, 'audit.db'), `tool = '${tool}'`).length >= 1, `the record of ${tool}`, 20_000)
      // With the arguments' digest, as any call's record has it (it was '': a probe).
      expect(auditRows(join(dir, 'audit.db'), `tool = '${tool}'`)).toMatchObject([{ status: 400, decision: 'deny', code: 'bad_request', args_sha256: deepDigest }])
    }
    expect(upstream.received).toHaveLength(0)
    // Arguments of a real tool's depth still run.
    const shallow = await post(agent, '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"get_daily_report","arguments":{"region":"eu"}}}')
    expect(shallow.text).not.toContain('-32602')
    expect(upstream.received).toHaveLength(1)
  }, 60_000)
})
