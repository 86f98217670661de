// The trace one MCP request of an agent goes on in. An agent may send its W3C trace context in the
// request's `params._meta` (`traceparent`, `tracestate`: MCP 2026-07-28, SEP-414), as SDKs do that
// trace the MCP call rather than its HTTP request. OpenTelemetry's MCP conventions: that context is
// the MCP server span's parent, and the transport's (the HTTP request's span) a link. The gateway's
// HTTP request span began before the body was read, from the `traceparent` header or as a new trace;
// a valid `_meta.traceparent` wins for the MCP request itself: its records, its spans and what goes
// on to a server or a route are in the agent's trace. Without one (or an invalid one, ignored), the
// MCP request goes on in its HTTP request's trace, a child of its span.
import type { ServerContext } from '@modelcontextprotocol/server'
import { endMcpSpan, startMcpServerSpan, traceContextOf, type TraceContext, type Tracing } from '../../telemetry/index.ts'

export interface CallTrace {
  /**
   * The MCP request's trace context: its traceId is the one its records hold and next hops get, its
   * spanId the gateway's span (or, with tracing off, hop) they are children of. Null only outside
   * an HTTP request.
   */
  readonly trace: TraceContext | null
  /** Names the server span after a tool the gateway knows (and would list): never a name the agent made up. */
  named(tool: string): void
  /** Ends the server span, if there is one (endMcpSpan's errorType). */
  end(errorType: string | null): void
}

/** `tool`: a tools/call's tool, as the agent named it (an attribute at once, the span's name once `named`). */
export function startCallTrace(ctx: ServerContext, tracing: Tracing | null, method: string, tool?: string): CallTrace {
  const transport = httpRequestSpan(ctx)
  const agent = agentMetaTrace(ctx)
  if (agent === null) return { trace: transport, named() {}, end() {} }
  if (tracing === null) return { trace: agent, named() {}, end() {} }
  const { span, trace } = startMcpServerSpan(tracing, agent, transport, tool === undefined ? { method } : { method, tool })
  return {
    trace,
    named: (name) => span.updateName(`${method} ${name}`),
    end: (errorType) => endMcpSpan(span, errorType),
  }
}

/**
 * The agent's trace context from the request's `params._meta`, continued (the gateway a hop of its
 * own: a new span id, the agent's as parent; tracestate only when W3C-valid): null when there is
 * none, or it is not a valid traceparent (ignored, as a header's would be; never passed on raw).
 */
function agentMetaTrace(ctx: ServerContext): TraceContext | null {
  const meta = ctx.mcpReq._meta as Record<string, unknown> | undefined
  const traceparent = meta?.traceparent
  if (typeof traceparent !== 'string') return null
  const tracestate = typeof meta?.tracestate === 'string' ? meta.tracestate : undefined
  const trace = traceContextOf(traceparent, tracestate)
  return trace.parentSpanId === null ? null : trace
}

/**
 * The MCP request's HTTP request span (or, with tracing off, its hop), from the traceparent
 * endpoint.ts webRequest sets to that span's ids.
 */
function httpRequestSpan(ctx: ServerContext): TraceContext | null {
  const traceparent = ctx.http?.req?.headers.get('traceparent')
  if (!traceparent) return null
  const continued = traceContextOf(traceparent, ctx.http?.req?.headers.get('tracestate') ?? undefined)
  return continued.parentSpanId ? { ...continued, spanId: continued.parentSpanId, parentSpanId: null } : null
}
