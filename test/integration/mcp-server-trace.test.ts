// A tool call to an aggregated MCP server goes on in the MCP request's trace: the server receives
// W3C trace context in the request's `params._meta` (`traceparent`, `tracestate`: MCP 2026-07-28
// "OpenTelemetry trace context", SEP-414; OpenTelemetry's MCP conventions) and in the HTTP headers of
// the POST that carries the call, whose parent is the gateway's `tools/call TOOL` client span, a
// child of the MCP request's span. It received none: the SDK client shares one connection across
// calls, so the server's spans were orphans and an agent's call could not be followed through.
// With tracing off, the MCP request's own trace context is sent (no span of the gateway's).
import { join } from 'node:path'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { auditRows, MCP_RESOURCE, startMcpTestGateway, type mcpTestConfig, type McpTestSetup } from '../helpers/mcp.ts'
import { startTraceProbeServer, type SeenCall, type TraceProbeServer } from '../helpers/mcp-servers.ts'
import { attributesOf, startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp.ts'
import { waitFor } from '../helpers/wait.ts'

const AGENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const AGENT_PARENT = '00f067aa0ba902b7'

let receiver: OtlpReceiver
let mcpServer: TraceProbeServer
let seen: SeenCall[]
let traced: McpTestSetup
let untraced: McpTestSetup
let transparent: McpTestSetup

/**
 * The gateway's config with the probe server aggregated (the agent may call its tools), and
 * `telemetry`; `transparent`: the server's tools keep their names (prefix: false), any name passes.
 */
function withProbeServer(telemetry: Record<string, unknown> | null, transparent = false) {
  return (config: ReturnType<typeof mcpTestConfig>) => {
    config.policies[0]!.statements.push({ sid: 'AgentProbe', effect: 'allow', actions: ['call'], routes: [transparent ? 'mcp:*' : 'mcp:traced__*'] })
    const server = { name: 'traced', url: mcpServer.url, ...(transparent ? { prefix: false } : {}) }
    return { ...config, ...(telemetry ? { telemetry } : {}), mcp: { ...config.mcp, servers: [server] } }
  }
}

beforeAll(async () => {
  receiver = await startOtlpReceiver()
  mcpServer = await startTraceProbeServer()
  seen = mcpServer.seen
  const otlp = { otlp_endpoint: receiver.url, service_name: 'bouncer-mcp-trace' }
  ;[traced, untraced, transparent] = await Promise.all([
    startMcpTestGateway('mcp-server-trace', withProbeServer(otlp)),
    startMcpTestGateway('mcp-server-untraced', withProbeServer(null)),
    startMcpTestGateway('mcp-server-trace-transparent', withProbeServer(otlp, true)),
  ])
}, 90_000)

afterAll(async () => {
  await Promise.all([traced?.close(), untraced?.close(), transparent?.close()])
  await mcpServer?.close()
  receiver?.close()
})

/** An agent's SDK client on `version`, sending `headers` with each request. */
async function agent(setup: McpTestSetup, version: string, headers: Record<string, string> = {}): Promise<Client> {
  const modern = version >= '2026-07-28'
  const client = new Client({ name: 'traced-agent', version: '1' }, modern ? { versionNegotiation: { mode: { pin: version } } } : { supportedProtocolVersions: [version] })
  const token = await setup.idp.token('analytics-agent', { resource: MCP_RESOURCE })
  await client.connect(new StreamableHTTPClientTransport(new URL(`${setup.gateway.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}`, ...headers } } }))
  return client
}

/** Calls `tool` (traced__probe) once as `requestId`; answers what the server saw of that call. */
async function probe(client: Client, requestId: string, tool = 'traced__probe'): Promise<SeenCall> {
  const before = seen.length
  const result = await client.callTool({ name: tool, arguments: {} }, { headers: { 'x-request-id': requestId } })
  expect(result.content).toEqual([{ type: 'text', text: 'probed' }])
  expect(seen.length).toBe(before + 1)
  return seen[before] as SeenCall
}

/** An agent on `version` (sending `headers`) that calls traced__probe once as `requestId`, then leaves. */
async function probeOnce(setup: McpTestSetup, version: string, requestId: string, headers: Record<string, string> = {}): Promise<SeenCall> {
  const client = await agent(setup, version, headers)
  try {
    return await probe(client, requestId)
  } finally {
    await client.close()
  }
}

describe('a tool call to an aggregated MCP server and the trace', () => {
  it('continues the agent\'s trace in _meta and the HTTP headers, its parent the gateway\'s client span under the MCP request\'s (2025-11-25)', async () => {
    const call = await probeOnce(traced, '2025-11-25', 'trace-legacy', { traceparent: `00-${AGENT_TRACE}-${AGENT_PARENT}-01`, tracestate: 'agent=1' })
    const traceparent = String(call.meta.traceparent)
    const [, traceId, parentId, flags] = traceparent.split('-')
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]$/)
    expect(traceId).toBe(AGENT_TRACE)
    expect(flags).toBe('01')
    expect(call.meta.tracestate).toBe('agent=1')
    // The POST that carried the call says the same (the connection is shared; the header is this call's).
    expect(call.headers.traceparent).toBe(traceparent)
    expect(call.headers.tracestate).toBe('agent=1')
    // Its parent is the gateway's client span, a child of the MCP request's span, which continued the agent's.
    const mcpRequest = await receiver.requestSpan('trace-legacy')
    expect(mcpRequest).toMatchObject({ traceId: AGENT_TRACE, parentSpanId: AGENT_PARENT })
    const client_ = await receiver.span(parentId as string)
    expect(client_).toMatchObject({ traceId: AGENT_TRACE, parentSpanId: mcpRequest.spanId, kind: 3, name: 'tools/call probe' })
    expect(attributesOf(client_)).toMatchObject({
      'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'probe', 'gen_ai.operation.name': 'execute_tool', 'bouncer.upstream': 'mcp:traced', 'bouncer.tool': 'traced__probe',
      'server.address': '127.0.0.1', 'server.port': mcpServer.port,
    })
    expect(attributesOf(client_)['error.type']).toBeUndefined()
    // The call's audit record is in the same trace.
    const db = join(traced.dir, 'audit.db')
    await waitFor(() => auditRows(db, "tool = 'traced__probe'").length >= 1, 'the call\'s record', 10_000)
    expect(auditRows(db, "tool = 'traced__probe'")[0]).toMatchObject({ upstream: 'mcp:traced', trace_id: AGENT_TRACE })
  }, 60_000)

  it('goes on in the trace the gateway began for an agent that sent none (2026-07-28)', async () => {
    const call = await probeOnce(traced, '2026-07-28', 'trace-modern')
    const traceparent = String(call.meta.traceparent)
    const [, traceId, parentId] = traceparent.split('-')
    expect(call.headers.traceparent).toBe(traceparent)
    expect(call.meta.tracestate).toBeUndefined()
    expect(call.headers.tracestate).toBeUndefined()
    const mcpRequest = await receiver.requestSpan('trace-modern')
    expect(mcpRequest.parentSpanId ?? '').toBe('')
    expect(traceId).toBe(mcpRequest.traceId)
    expect(await receiver.span(parentId as string)).toMatchObject({ traceId: mcpRequest.traceId, parentSpanId: mcpRequest.spanId, kind: 3, name: 'tools/call probe' })
  }, 60_000)

  it('each call of a shared connection has its own: two calls, two client spans, two traceparents', async () => {
    const client = await agent(traced, '2025-11-25')
    let first: SeenCall
    let second: SeenCall
    try {
      first = await probe(client, 'trace-first')
      second = await probe(client, 'trace-second')
    } finally {
      await client.close()
    }
    const [firstRequest, secondRequest] = await Promise.all([receiver.requestSpan('trace-first'), receiver.requestSpan('trace-second')])
    for (const [call, request] of [[first, firstRequest], [second, secondRequest]] as const) {
      const [, traceId, parentId] = String(call.meta.traceparent).split('-')
      expect(traceId).toBe(request.traceId)
      expect(call.headers.traceparent).toBe(call.meta.traceparent)
      expect((await receiver.span(parentId as string)).parentSpanId).toBe(request.spanId)
    }
    expect(first.meta.traceparent).not.toBe(second.meta.traceparent)
  }, 60_000)

  it('a tool\'s error result and a JSON-RPC error are the client span\'s error.type, as the conventions say', async () => {
    const client = await agent(traced, '2025-11-25')
    const before = seen.length
    try {
      expect((await client.callTool({ name: 'traced__broken', arguments: {} })).isError).toBe(true)
      await expect(client.callTool({ name: 'traced__failing', arguments: {} })).rejects.toThrow(/read-only/)
    } finally {
      await client.close()
    }
    const [broken, failing] = seen.slice(before)
    const brokenSpan = await receiver.span(String(broken?.meta.traceparent).split('-')[2] as string)
    const failingSpan = await receiver.span(String(failing?.meta.traceparent).split('-')[2] as string)
    expect(brokenSpan).toMatchObject({ name: 'tools/call broken', status: { code: 2, message: 'tool_error' } })
    expect(attributesOf(brokenSpan)['error.type']).toBe('tool_error')
    expect(failingSpan).toMatchObject({ name: 'tools/call failing', status: { code: 2 } })
    expect(attributesOf(failingSpan)['error.type']).toBe('-32001')
    // The server's words stay out of the span.
    expect(JSON.stringify(failingSpan)).not.toContain('read-only')
  }, 60_000)

  // The transparent mode passes on any name an agent makes up: each would have named a span of its own.
  it('names the span after a tool the server lists, and `tools/call` alone for a name it does not (transparent mode)', async () => {
    const client = await agent(transparent, '2025-11-25')
    let listed: SeenCall
    let madeUp: SeenCall
    try {
      listed = await probe(client, 'trace-listed', 'probe')
      madeUp = await probe(client, 'trace-made-up', 'made_up_0042')
    } finally {
      await client.close()
    }
    expect(madeUp.tool).toBe('made_up_0042')
    const listedSpan = await receiver.span(String(listed.meta.traceparent).split('-')[2] as string)
    const madeUpSpan = await receiver.span(String(madeUp.meta.traceparent).split('-')[2] as string)
    expect(listedSpan.name).toBe('tools/call probe')
    expect(madeUpSpan.name).toBe('tools/call')
    expect(attributesOf(madeUpSpan)).toMatchObject({ 'gen_ai.tool.name': 'made_up_0042', 'bouncer.tool': 'made_up_0042' })
    expect(madeUpSpan.parentSpanId).toBe((await receiver.requestSpan('trace-made-up')).spanId)
  }, 60_000)

  // What the transparent mode passes through went on with the agent's own `_meta` as it came: its
  // trace context, if any, skipped the gateway's spans; the gateway's own was never sent. (An agent's
  // `_meta` trace context is the MCP request's: mcp-agent-trace-context.test.ts.)
  it('a resource read and a prompt passed through go on in the MCP request\'s trace, under a span of their own (transparent mode)', async () => {
    const client = await agent(transparent, '2025-11-25')
    const before = seen.length
    try {
      await client.readResource({ uri: 'probe://one' }, { headers: { 'x-request-id': 'trace-read' } })
      await client.getPrompt({ name: 'summary' }, { headers: { 'x-request-id': 'trace-prompt' } })
    } finally {
      await client.close()
    }
    const [read, prompt] = seen.slice(before)
    for (const [call, requestId, name] of [[read, 'trace-read', 'resources/read'], [prompt, 'trace-prompt', 'prompts/get']] as const) {
      expect(call?.tool).toBe(name)
      const traceparent = String(call?.meta.traceparent)
      const [, traceId, parentId] = traceparent.split('-')
      expect(call?.headers.traceparent).toBe(traceparent)
      const mcpRequest = await receiver.requestSpan(requestId)
      expect(traceId).toBe(mcpRequest.traceId)
      const span = await receiver.span(parentId as string)
      expect(span).toMatchObject({ name, kind: 3, traceId: mcpRequest.traceId, parentSpanId: mcpRequest.spanId })
      expect(attributesOf(span)).toMatchObject({ 'mcp.method.name': name, 'bouncer.upstream': 'mcp:traced' })
    }
  }, 60_000)

  it('with tracing off sends the MCP request\'s own trace context (the agent\'s trace continued, the gateway a hop), no span', async () => {
    const call = await probeOnce(untraced, '2025-11-25', 'untraced', { traceparent: `00-${AGENT_TRACE}-${AGENT_PARENT}-01` })
    const traceparent = String(call.meta.traceparent)
    const [version, traceId, parentId] = traceparent.split('-')
    expect(version).toBe('00')
    expect(traceId).toBe(AGENT_TRACE) // the trace id of the MCP request's audit record
    expect(parentId).toMatch(/^[0-9a-f]{16}$/)
    expect(parentId).not.toBe(AGENT_PARENT)
    expect(call.headers.traceparent).toBe(traceparent)
    expect(receiver.spans.some((s) => s.spanId === parentId)).toBe(false)
  }, 60_000)
})
