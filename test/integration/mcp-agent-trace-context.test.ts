// An agent may send its W3C trace context in an MCP request's `params._meta` (`traceparent`,
// `tracestate`: MCP 2026-07-28, SEP-414), as SDKs do that trace the MCP call rather than its HTTP
// request. The gateway read only the HTTP `traceparent` header (its request span begins before the
// body is read): such an agent's calls were in a trace of the gateway's own, and the servers and
// routes behind it were sent that trace, not the agent's. OpenTelemetry's MCP conventions: the
// `_meta` context is the MCP server span's parent, the transport's (HTTP) a link. So the gateway's
// `tools/call TOOL` server span continues the agent's `_meta` context (winning over a header, which
// the HTTP request span keeps), what goes on continues the agent's trace, and the call's record holds
// it; an invalid one is ignored, and never sent on as it came.
import { join } from 'node:path'
import type { Client } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, type mcpTestConfig, type McpTestSetup } from '../helpers/mcp.ts'
import { startTraceProbeServer, type SeenCall, type TraceProbeServer } from '../helpers/mcp-servers.ts'
import { attributesOf, startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp.ts'
import { waitFor } from '../helpers/wait.ts'

const AGENT_TRACE = '0af7651916cd43dd8448eb211c80319c'
const AGENT_SPAN = 'b7ad6b7169203331'
const AGENT_TRACEPARENT = `00-${AGENT_TRACE}-${AGENT_SPAN}-01`
/** The trace of an HTTP-instrumented agent's header, where one is sent too. */
const HEADER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const HEADER_TRACEPARENT = `00-${HEADER_TRACE}-00f067aa0ba902b7-01`

let receiver: OtlpReceiver
let mcpServer: TraceProbeServer
let traced: McpTestSetup
let untraced: McpTestSetup
let transparent: McpTestSetup

/** The probe server aggregated as `traced` (its tools `traced__*`, or with `transparent` its own names and resources), with `telemetry`. */
function withProbeServer(telemetry: Record<string, unknown> | null, transparentMode = false) {
  return (config: ReturnType<typeof mcpTestConfig>) => {
    config.policies[0]!.statements.push({ sid: 'AgentProbe', effect: 'allow', actions: ['call'], routes: [transparentMode ? 'mcp:*' : 'mcp:traced__*'] })
    const server = { name: 'traced', url: mcpServer.url, ...(transparentMode ? { prefix: false } : {}) }
    return { ...config, ...(telemetry ? { telemetry } : {}), mcp: { ...config.mcp, servers: [server] } }
  }
}

beforeAll(async () => {
  receiver = await startOtlpReceiver()
  mcpServer = await startTraceProbeServer()
  const otlp = { otlp_endpoint: receiver.url, service_name: 'bouncer-mcp-agent-trace' }
  ;[traced, untraced, transparent] = await Promise.all([
    startMcpTestGateway('mcp-agent-trace', withProbeServer(otlp)),
    startMcpTestGateway('mcp-agent-untraced', withProbeServer(null)),
    startMcpTestGateway('mcp-agent-trace-transparent', withProbeServer(otlp, true)),
  ])
}, 90_000)

afterAll(async () => {
  await Promise.all([traced?.close(), untraced?.close(), transparent?.close()])
  await mcpServer?.close()
  receiver?.close()
})

/** An agent of `setup` on `version`, sending `headers` with each request; closed once `use` is done. */
async function asAgent<T>(setup: McpTestSetup, version: string, use: (client: Client) => Promise<T>, headers: Record<string, string> = {}): Promise<T> {
  const token = await setup.idp.token('analytics-agent', { resource: MCP_RESOURCE })
  const client = await connect(`${setup.gateway.url}/mcp`, token, version, headers)
  try {
    return await use(client)
  } finally {
    await client.close()
  }
}

/** Calls traced__probe as `requestId` with `meta` in its params' `_meta`; answers what the server saw of it. */
async function probe(client: Client, requestId: string, meta: Record<string, unknown>): Promise<SeenCall> {
  const before = mcpServer.seen.length
  const result = await client.callTool({ name: 'traced__probe', arguments: {}, _meta: meta }, { headers: { 'x-request-id': requestId } })
  expect(result.content).toEqual([{ type: 'text', text: 'probed' }])
  expect(mcpServer.seen.length).toBe(before + 1)
  return mcpServer.seen[before] as SeenCall
}

/** The traceparent the server received, split; the `_meta` one and the POST's header the same. */
function receivedTraceparent(call: SeenCall): { traceId: string; parentId: string; flags: string } {
  const traceparent = String(call.meta.traceparent)
  expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]$/)
  expect(call.headers.traceparent).toBe(traceparent)
  const [, traceId, parentId, flags] = traceparent.split('-') as [string, string, string, string]
  return { traceId, parentId, flags }
}

/** The audit record of the tool call `tool`, at least `count` of them written: the last. */
async function toolRecord(setup: McpTestSetup, where: string): Promise<Record<string, unknown>> {
  const db = join(setup.dir, 'audit.db')
  await waitFor(() => auditRows(db, where).length >= 1, `the record where ${where}`, 10_000)
  return auditRows(db, where).at(-1) as Record<string, unknown>
}

describe('an agent\'s trace context in params._meta', () => {
  for (const version of ['2025-11-25', '2026-07-28']) {
    it(`continues the agent's trace with no traceparent header: the server span's parent is the agent's span, the server gets its trace (${version})`, async () => {
      const requestId = `meta-only-${version}`
      const call = await asAgent(traced, version, (client) => probe(client, requestId, { traceparent: AGENT_TRACEPARENT, tracestate: 'agent=1' }))
      const sent = receivedTraceparent(call)
      expect(sent.traceId).toBe(AGENT_TRACE)
      expect(sent.parentId).not.toBe(AGENT_SPAN)
      expect(sent.flags).toBe('01')
      expect(call.meta.tracestate).toBe('agent=1')
      expect(call.headers.tracestate).toBe('agent=1')
      // The server's parent is the gateway's client span, a child of its server span for the MCP
      // request, whose parent is the agent's span; the HTTP request's span (a trace of its own: no
      // header) is the server span's link.
      const clientSpan = await receiver.span(sent.parentId)
      expect(clientSpan).toMatchObject({ traceId: AGENT_TRACE, kind: 3, name: 'tools/call probe' })
      const serverSpan = await receiver.span(clientSpan.parentSpanId as string)
      expect(serverSpan).toMatchObject({ traceId: AGENT_TRACE, parentSpanId: AGENT_SPAN, kind: 2, name: 'tools/call traced__probe' })
      expect(attributesOf(serverSpan)).toMatchObject({ 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'traced__probe', 'gen_ai.operation.name': 'execute_tool' })
      const httpSpan = await receiver.requestSpan(requestId)
      expect(httpSpan.traceId).not.toBe(AGENT_TRACE)
      expect(serverSpan.links).toEqual([expect.objectContaining({ traceId: httpSpan.traceId, spanId: httpSpan.spanId })])
      // The call's record holds the trace its server was sent; the HTTP request's, its span's.
      expect(await toolRecord(traced, `tool = 'traced__probe' AND trace_id = '${AGENT_TRACE}'`)).toMatchObject({ upstream: 'mcp:traced' })
      expect(await toolRecord(traced, `request_id = '${requestId}'`)).toMatchObject({ trace_id: httpSpan.traceId, route: 'builtin/mcp' })
    }, 60_000)
  }

  it('a route tool\'s request goes on in the agent\'s trace: the upstream gets it, the route\'s record holds it', async () => {
    const before = traced.upstream.received.length
    const result = await asAgent(traced, '2026-07-28', (client) => client.callTool({ name: 'get_daily_report', arguments: { region: 'eu' }, _meta: { traceparent: AGENT_TRACEPARENT } }))
    expect(result.isError).toBe(false)
    const received = traced.upstream.received.slice(before).find((r) => r.url.startsWith('/sales/daily/eu'))
    const [, traceId, parentId] = String(received?.headers.traceparent).split('-')
    expect(traceId).toBe(AGENT_TRACE)
    // The route's upstream span, under the route's request span, under the gateway's MCP server span.
    const upstreamSpan = await receiver.span(parentId as string)
    const routeSpan = await receiver.span(upstreamSpan.parentSpanId as string)
    const serverSpan = await receiver.span(routeSpan.parentSpanId as string)
    expect(serverSpan).toMatchObject({ traceId: AGENT_TRACE, parentSpanId: AGENT_SPAN, kind: 2, name: 'tools/call get_daily_report' })
    expect(await toolRecord(traced, `tool = 'get_daily_report' AND route = 'sales.daily' AND trace_id = '${AGENT_TRACE}'`)).toMatchObject({ status: 200 })
  }, 60_000)

  it('an invalid _meta.traceparent is ignored: the call succeeds in the HTTP request\'s trace, nothing of it sent on', async () => {
    for (const [i, invalid] of [`00-${'0'.repeat(32)}-${AGENT_SPAN}-01`, 'not-a-traceparent', `ff-${AGENT_TRACE}-${AGENT_SPAN}-01`, 42].entries()) {
      const requestId = `meta-invalid-${i}`
      const call = await asAgent(traced, '2025-11-25', (client) => probe(client, requestId, { traceparent: invalid, tracestate: 'agent=1' }))
      const sent = receivedTraceparent(call)
      const httpSpan = await receiver.requestSpan(requestId)
      expect(sent.traceId).toBe(httpSpan.traceId)
      expect(sent.traceId).not.toBe(AGENT_TRACE)
      expect(call.meta.tracestate).toBeUndefined()
      expect((await receiver.span(sent.parentId)).parentSpanId).toBe(httpSpan.spanId)
    }
  }, 60_000)

  it('with a traceparent header too, _meta\'s wins for the MCP request (the conventions\' rule); the HTTP request span keeps the header\'s', async () => {
    const call = await asAgent(traced, '2025-11-25', (client) => probe(client, 'meta-and-header', { traceparent: AGENT_TRACEPARENT }), { traceparent: HEADER_TRACEPARENT, tracestate: 'header=1' })
    const sent = receivedTraceparent(call)
    expect(sent.traceId).toBe(AGENT_TRACE)
    // _meta's trace context whole: the header's tracestate does not go with another trace's parent.
    expect(call.meta.tracestate).toBeUndefined()
    const httpSpan = await receiver.requestSpan('meta-and-header')
    expect(httpSpan).toMatchObject({ traceId: HEADER_TRACE, parentSpanId: '00f067aa0ba902b7' })
    const serverSpan = await receiver.span((await receiver.span(sent.parentId)).parentSpanId as string)
    expect(serverSpan).toMatchObject({ traceId: AGENT_TRACE, parentSpanId: AGENT_SPAN, kind: 2 })
    expect(serverSpan.links).toEqual([expect.objectContaining({ traceId: HEADER_TRACE, spanId: httpSpan.spanId })])
  }, 60_000)

  it('with tracing off, the server still gets the agent\'s trace (the gateway a hop), and the call\'s record holds it', async () => {
    const call = await asAgent(untraced, '2025-11-25', (client) => probe(client, 'meta-untraced', { traceparent: AGENT_TRACEPARENT, tracestate: 'agent=1' }))
    const sent = receivedTraceparent(call)
    expect(sent.traceId).toBe(AGENT_TRACE)
    expect(sent.parentId).not.toBe(AGENT_SPAN)
    expect(call.meta.tracestate).toBe('agent=1')
    expect(receiver.spans.some((s) => s.spanId === sent.parentId)).toBe(false)
    await toolRecord(untraced, `tool = 'traced__probe' AND trace_id = '${AGENT_TRACE}'`)
  }, 60_000)

  it('a resource read passed through goes on in the agent\'s trace, under a server span of its own (transparent mode)', async () => {
    const before = mcpServer.seen.length
    await asAgent(transparent, '2025-11-25', (client) => client.readResource({ uri: 'probe://one', _meta: { traceparent: AGENT_TRACEPARENT } }))
    const sent = receivedTraceparent(mcpServer.seen[before] as SeenCall)
    expect(sent.traceId).toBe(AGENT_TRACE)
    const clientSpan = await receiver.span(sent.parentId)
    expect(clientSpan).toMatchObject({ traceId: AGENT_TRACE, kind: 3, name: 'resources/read' })
    const serverSpan = await receiver.span(clientSpan.parentSpanId as string)
    expect(serverSpan).toMatchObject({ traceId: AGENT_TRACE, parentSpanId: AGENT_SPAN, kind: 2, name: 'resources/read' })
    expect(attributesOf(serverSpan)['mcp.method.name']).toBe('resources/read')
  }, 60_000)

  // The agent's `_meta` went on as it came, the gateway's traceparent over its own: a tracestate of
  // the agent's then went with the gateway's trace.
  it('a passed-through request\'s invalid trace context is never sent on, its other _meta keys are (transparent mode)', async () => {
    const before = mcpServer.seen.length
    await asAgent(transparent, '2025-11-25', (client) => client.readResource(
      { uri: 'probe://two', _meta: { traceparent: 'garbage', tracestate: 'agent=1', 'example.com/kept': 'yes' } },
      { headers: { 'x-request-id': 'meta-read-invalid' } },
    ))
    const invalid = mcpServer.seen[before] as SeenCall
    expect(receivedTraceparent(invalid).traceId).toBe((await receiver.requestSpan('meta-read-invalid')).traceId)
    expect(invalid.meta.tracestate).toBeUndefined()
    expect(invalid.headers.tracestate).toBeUndefined()
    expect(invalid.meta['example.com/kept']).toBe('yes')
  }, 60_000)
})
