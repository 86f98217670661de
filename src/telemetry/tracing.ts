// OpenTelemetry spans, exported over OTLP/HTTP, only when telemetry.otlp_endpoint is set: the SDK is
// not even loaded otherwise, and the request path checks one null (no tracing cost when off).
//
// A request gets a server span (a child of the caller's W3C parent when there is one), with child
// spans for authentication and for the upstream call; the upstream call's span id is what goes
// upstream in `traceparent`, and the trace id is the one in the audit record and the logs. These
// functions answer the ids; the pipeline records them in the request context.
import { createHash, randomBytes } from 'node:crypto'
import type * as OpenTelemetryApi from '@opentelemetry/api'
import type { Span, SpanKind, Tracer } from '@opentelemetry/api'
import type { ReadableSpan, Sampler, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base'
import type { TelemetryConfig } from '../config/index.ts'
import { CLIENT_REQUEST_BOUNDS, MAX_ECHOED_CHARS, truncateClientValue } from '../errors/index.ts'
import { BACKGROUND_TASKS, type FailureCounter } from './background.ts'
import { urlForLogs, type Logger } from './logger.ts'
import type { TraceContext } from './trace-context.ts'
import { nodeHttp } from '../http/index.ts'

const { METHODS } = nodeHttp // not imported: http/node-http.ts says why

export interface Tracing {
  readonly tracer: Tracer
  shutdown(): Promise<void>
}

/** One request's open spans (its own state: ending a span clears its slot). */
export interface RequestSpans {
  request: Span
  auth: Span | null
  upstream: Span | null
}

/** What tracing counts into the gateway's metrics: failed exports, and spans dropped unexported. */
export interface TraceCounters extends FailureCounter {
  spansDropped(count: number): void
}

/** The batch processor's queue (the SDK's default, set explicitly so OTEL_BSP_MAX_QUEUE_SIZE cannot make the count below wrong). */
const MAX_QUEUE_SIZE = 2_048

/**
 * OpenTelemetry's API, loaded with the SDK by startTracing: every function below runs only for a
 * `Tracing` it answered. Imported at the top, it came (44 modules) with this folder's logger into
 * every command's start (bouncer keys, audit, secrets: 0.6-0.8 s of CPU each, hundreds a test run).
 */
let otel: typeof OpenTelemetryApi

/** Loads the SDK and the OTLP exporter; null when no endpoint is configured. */
export async function startTracing(config: TelemetryConfig, logger: Logger, failures: TraceCounters): Promise<Tracing | null> {
  if (!config.otlp_endpoint) return null
  const [{ AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, TraceIdRatioBasedSampler }, { OTLPTraceExporter }, { resourceFromAttributes }, api] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/api'),
  ])
  otel = api
  const url = tracesUrl(config.otlp_endpoint)
  const provider = new BasicTracerProvider({
    // The SDK's default sampler follows the caller's sampled flag: a client sending `-00` had none of
    // its requests recorded. Every request is traced, unless the operator chose a sampler.
    ...(!process.env.OTEL_TRACES_SAMPLER ? { sampler: new AlwaysOnSampler() } : process.env.OTEL_TRACES_SAMPLER.trim() === 'traceidratio' ? { sampler: keyedTraceIds(new TraceIdRatioBasedSampler(samplerRatio(process.env.OTEL_TRACES_SAMPLER_ARG))) } : {}),
    resource: resourceFromAttributes({ 'service.name': config.service_name }),
    spanProcessors: [countingDrops(failures, (exporter) => new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1_000, maxQueueSize: MAX_QUEUE_SIZE }), watchExports(new OTLPTraceExporter({ url }), url, logger, failures))],
  })
  return { tracer: provider.getTracer('bouncer'), shutdown: () => provider.shutdown() }
}

/**
 * The endpoint's path with `/v1/traces` added unless it ends with it. Appended to the text, it went
 * after a query (`?tenant=a` → `?tenant=a/v1/traces`): the spans were posted to the endpoint's own
 * path, which collectors answer 404 (a probe).
 */
function tracesUrl(endpoint: string): string {
  const url = new URL(endpoint)
  let path = url.pathname
  while (path.endsWith('/')) path = path.slice(0, -1)
  if (!path.endsWith('/v1/traces')) url.pathname = `${path}/v1/traces`
  return url.href
}

/** OTEL_TRACES_SAMPLER_ARG as the SDK reads it for `traceidratio`: 1 when blank or outside [0, 1]. */
function samplerRatio(arg: string | undefined): number {
  const ratio = arg === undefined || arg.trim() === '' ? Number.NaN : Number(arg)
  return ratio >= 0 && ratio <= 1 ? ratio : 1
}

/**
 * `traceidratio` decides on the trace id alone (its four 32-bit words XORed, under the ratio), and a
 * caller continuing a trace chooses the trace id: four equal words XOR to 0, always kept; a first
 * word ffffffff and three zero ones, never. A client put all its requests in the traces, or took
 * them all out, at any ratio (a probe). The sampler is given the trace id keyed with a secret of
 * this process (SHA-256), so a caller cannot tell which ids are kept; a request's spans all see the
 * same id, so they are kept or dropped together. Only with OTEL_TRACES_SAMPLER=traceidratio: one
 * hash per span started, on the request path.
 */
function keyedTraceIds(inner: Sampler): Sampler {
  const key = randomBytes(32)
  return {
    shouldSample: (context, traceId, ...rest) => inner.shouldSample(context, createHash('sha256').update(key).update(traceId).digest('hex').slice(0, 32), ...rest),
    toString: () => `Keyed${inner.toString()}`,
  }
}

/**
 * The batch processor drops a sampled span that finds its queue full (the collector slow or away
 * longer than the queue lasts) and says so only in a diag line nobody reads: a tracing gap with no
 * number. Its queue is followed here — a sampled span ended goes in, the spans handed to the
 * exporter come out, as the SDK's own does — and a span that finds it full is counted
 * (bouncer_trace_spans_dropped_total).
 */
function countingDrops(counters: TraceCounters, batching: (exporter: SpanExporter) => SpanProcessor, exporter: SpanExporter): SpanProcessor {
  let queued = 0
  const send = exporter.export.bind(exporter)
  exporter.export = (spans, done) => {
    queued = Math.max(0, queued - spans.length)
    send(spans, done)
  }
  const inner = batching(exporter)
  return {
    onStart: (span, parent) => inner.onStart(span, parent),
    onEnd(span: ReadableSpan) {
      if ((span.spanContext().traceFlags & otel.TraceFlags.SAMPLED) !== 0) {
        if (queued >= MAX_QUEUE_SIZE) counters.spansDropped(1)
        else queued++
      }
      inner.onEnd(span)
    },
    forceFlush: () => inner.forceFlush(),
    shutdown: () => inner.shutdown(),
  }
}

/** ExportResultCode.SUCCESS of @opentelemetry/core (not a dependency of its own). */
const EXPORTED = 0

/**
 * A failed export was silent: with the collector down, or refusing the gateway (a 401), every span
 * was dropped and neither the logs nor the metrics said so. Each failed batch is now counted
 * (bouncer_background_failures_total{task="trace_export"}), and logged when exports start failing
 * (not once a second while they do), and when they work again.
 */
function watchExports(exporter: SpanExporter, url: string, logger: Logger, failures: FailureCounter): SpanExporter {
  const endpoint = urlForLogs(url)
  const send = exporter.export.bind(exporter)
  let failing = false
  exporter.export = (spans, done) => {
    send(spans, (result) => {
      if (result.code !== EXPORTED) {
        failures.backgroundFailed('trace_export')
        if (!failing) logger.error({ task: 'trace_export', endpoint, spans: spans.length, err: result.error }, `background task trace_export failed: ${BACKGROUND_TASKS.trace_export}`)
        failing = true
      } else if (failing) {
        failing = false
        logger.info({ task: 'trace_export', endpoint }, 'trace export works again')
      }
      done(result)
    })
  }
  return exporter
}

/**
 * The methods a span is named after: Node's HTTP/1.1 parser takes only these, but HTTP/2 takes any
 * token as :method, so `FOO1`, `FOO2`… each named a span of its own, and a tracing backend (its
 * operation list, a span-metrics connector's series) grew one per method a client made up. Any
 * other is `_OTHER`, its span `HTTP gateway`, as OpenTelemetry's HTTP conventions say.
 */
const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS)

/**
 * A span keeps what the audit record keeps of a value the caller chose (errors/truncate.ts), then
 * `…(truncated, N chars)`: a span held the path whole, up to server.max_header_bytes (1 MiB
 * allowed). A few hundred requests with 64 KB paths made a 31 MB export batch, which a collector
 * refuses (413: the OpenTelemetry Collector takes 20 MiB), dropping every other request's span in
 * it; and the 2,048 queued spans held the paths (a probe).
 */
const SPAN_BOUND = { ...CLIENT_REQUEST_BOUNDS, subject: MAX_ECHOED_CHARS } as const

export interface TracedRequest {
  method: string
  /** Never the query string, which may carry a token (RequestContext.path). */
  path: string
  id: string
}

/** OpenTelemetry's context for a span whose parent is span `spanId` of `of`'s trace (remote: another process's). */
function parentContext(of: TraceContext, spanId: string, isRemote: boolean) {
  return otel.trace.setSpanContext(otel.ROOT_CONTEXT, { traceId: of.traceId, spanId, traceFlags: Number.parseInt(of.flags, 16) & 1, isRemote })
}

/**
 * The trace context a started span's children and next hops go on from: its ids, sampled as it is
 * (recorded or not), with the random-id bit and tracestate of the context it continued (`from`).
 */
function goingOnFrom(span: Span, from: TraceContext, parentSpanId: string | null): TraceContext {
  const ids = span.spanContext()
  const flags = `0${(Number.parseInt(from.flags, 16) & 0x02) | (ids.traceFlags & 0x01)}`
  return { traceId: ids.traceId, spanId: ids.spanId, parentSpanId, flags, tracestate: from.tracestate }
}

/** The request's server span, continuing `incoming`; the trace the request carries from here on has the span's ids. */
export function startRequestSpan(tracing: Tracing, request: TracedRequest, incoming: TraceContext): { spans: RequestSpans; trace: TraceContext } {
  const parent = incoming.parentSpanId ? parentContext(incoming, incoming.parentSpanId, true) : otel.ROOT_CONTEXT
  const known = KNOWN_METHODS.has(request.method)
  const method = known ? request.method : '_OTHER'
  // Hot path: one length comparison each when the value is in bounds (truncateClientValue).
  const attributes = {
    'http.request.method': method,
    ...(known ? {} : { 'http.request.method_original': truncateClientValue(request.method, SPAN_BOUND.method) }),
    'url.path': truncateClientValue(request.path, SPAN_BOUND.path),
    'bouncer.request_id': request.id,
  }
  const span = tracing.tracer.startSpan(`${known ? method : 'HTTP'} gateway`, { kind: otel.SpanKind.SERVER, attributes }, parent)
  return { spans: { request: span, auth: null, upstream: null }, trace: goingOnFrom(span, incoming, incoming.parentSpanId) }
}

function child(tracing: Tracing, spans: RequestSpans, name: string, kind: SpanKind): Span {
  return tracing.tracer.startSpan(name, { kind }, otel.trace.setSpan(otel.context.active(), spans.request))
}

export function startAuthSpan(tracing: Tracing, spans: RequestSpans): void {
  spans.auth = child(tracing, spans, 'authenticate', otel.SpanKind.INTERNAL)
}

export interface AuthOutcome {
  identity: { sub: string; issuerName: string } | null
  roles: readonly string[]
  code: string | null
}

export function endAuthSpan(spans: RequestSpans, outcome: AuthOutcome): void {
  const span = spans.auth
  if (!span) return
  if (outcome.identity) span.setAttributes({ 'enduser.id': truncateClientValue(outcome.identity.sub, SPAN_BOUND.subject), 'bouncer.issuer': outcome.identity.issuerName, 'bouncer.roles': outcome.roles.join(',') })
  if (outcome.code !== null) span.setStatus({ code: otel.SpanStatusCode.ERROR, message: outcome.code })
  span.end()
  spans.auth = null
}

/** The upstream call's span; answers its id, the parent-id the upstream receives in traceparent. */
export function startUpstreamSpan(tracing: Tracing, spans: RequestSpans, upstream: string): string {
  const span = child(tracing, spans, `upstream ${upstream}`, otel.SpanKind.CLIENT)
  span.setAttribute('bouncer.upstream', upstream)
  spans.upstream = span
  return span.spanContext().spanId
}

/** A request to an aggregated MCP server, as its span names it. */
export interface McpClientRequest {
  /** Its MCP method (mcp.method.name): `tools/call`, or what the transparent mode passes through (`resources/read`…). */
  method: string
  /** The server's name (mcp.servers[].name). */
  server: string
  /** The server's URL: its host and port are the span's server.address and server.port (never the query). */
  url: string
  /** A `tools/call`'s tool. */
  tool?: McpToolName
}

export interface McpToolName {
  /** The tool's name at the server (without the SERVER__ prefix agents see). */
  upstreamName: string
  /** The tool's name as agents call it. */
  name: string
  /** Whether the server lists the tool: the transparent mode passes on any name an agent makes up. */
  listed: boolean
}

/** MCP's longest tool name: what a span keeps of a name the server does not list. */
const TOOL_NAME_LENGTH = 128

/**
 * A request to an aggregated MCP server (a tool call, or what the transparent mode passes through):
 * a client span, a child of the MCP request's span (`parent`: the MCP request's trace, its spanId
 * the request span's), named and attributed as OpenTelemetry's MCP conventions say (`tools/call
 * TOOL`, `resources/read`; mcp.method.name, gen_ai.tool.name). The SDK client shares one connection
 * across requests, so nothing of HTTP tracing could follow one: answers the trace context the server
 * is sent for this request, its parent-id the span's.
 */
export function startMcpClientSpan(tracing: Tracing, parent: TraceContext, request: McpClientRequest): { span: Span; trace: TraceContext } {
  const within = parentContext(parent, parent.spanId, false)
  const url = new URL(request.url)
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port)
  const tool = request.tool
  // A tool name the server does not list is the agent's to make up (a span name each, or kilobytes
  // of one): the span is then the method alone, as the conventions say when no low-cardinality
  // target is known (and so is every passed-through request: a prompt's name is the agent's too).
  const span = tracing.tracer.startSpan(tool?.listed ? `${request.method} ${tool.upstreamName}` : request.method, {
    kind: otel.SpanKind.CLIENT,
    attributes: {
      'mcp.method.name': request.method,
      'server.address': url.hostname.replace(/^\[|\]$/g, ''), 'server.port': port, 'network.transport': 'tcp', 'network.protocol.name': 'http',
      'bouncer.upstream': `mcp:${request.server}`,
      ...(tool ? { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': tool.upstreamName.slice(0, TOOL_NAME_LENGTH), 'bouncer.tool': tool.name.slice(0, TOOL_NAME_LENGTH) } : {}),
    },
  }, within)
  return { span, trace: goingOnFrom(span, parent, parent.spanId) }
}

/** An MCP request the gateway serves, whose agent sent its trace context in `params._meta`. */
export interface McpServerRequest {
  /** Its MCP method (mcp.method.name): `tools/call`, or what the transparent mode passes through. */
  method: string
  /** A `tools/call`'s tool, as the agent named it (the span takes its name once the caller knows the tool is listed: a name the agent made up stays out of span names). */
  tool?: string
}

/**
 * The gateway's server span for one MCP request, in the agent's trace: `agent` is the context the
 * agent put in `params._meta` (its parentSpanId the agent's span). OpenTelemetry's MCP conventions:
 * the server span's parent is the `_meta` context, and the transport's (the HTTP request's span,
 * `transport`) is a link, as one HTTP request may carry several MCP requests and one MCP request
 * several HTTP requests. Answers the trace context the call's children and next hops go on from.
 */
export function startMcpServerSpan(tracing: Tracing, agent: TraceContext, transport: TraceContext | null, request: McpServerRequest): { span: Span; trace: TraceContext } {
  if (agent.parentSpanId === null) throw new Error('an MCP server span continues the agent\'s context')
  const within = parentContext(agent, agent.parentSpanId, true)
  const link = transport ? [{ context: { traceId: transport.traceId, spanId: transport.spanId, traceFlags: Number.parseInt(transport.flags, 16) & 1 } }] : []
  const span = tracing.tracer.startSpan(request.method, {
    kind: otel.SpanKind.SERVER,
    links: link,
    attributes: {
      'mcp.method.name': request.method, 'network.transport': 'tcp', 'network.protocol.name': 'http',
      ...(request.tool !== undefined ? { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': request.tool.slice(0, TOOL_NAME_LENGTH) } : {}),
    },
  }, within)
  return { span, trace: goingOnFrom(span, agent, agent.parentSpanId) }
}

/**
 * Ends an MCP request's span, client or server. `errorType`: null when the server answered a
 * result; `tool_error` when a tool's result is an error (the conventions' value); the JSON-RPC
 * error's code, or the gateway's own code (upstream_timeout…), when it failed. The status says the code, never the server's words.
 */
export function endMcpSpan(span: Span, errorType: string | null): void {
  if (errorType !== null) {
    span.setAttribute('error.type', errorType)
    span.setStatus({ code: otel.SpanStatusCode.ERROR, message: errorType })
  }
  span.end()
}

export interface RequestOutcome extends AuthOutcome {
  status: number
  decision: string
  route: { id: string } | null
  statement: string | null
  limit: string | null
  upstreamStatus: number | null
}

/** Ends whatever is still open, with the request's outcome. */
export function endRequestSpans(spans: RequestSpans, outcome: RequestOutcome): void {
  endAuthSpan(spans, outcome)
  if (spans.upstream) {
    if (outcome.upstreamStatus !== null) spans.upstream.setAttribute('http.response.status_code', outcome.upstreamStatus)
    if (outcome.upstreamStatus === null || outcome.upstreamStatus >= 500) spans.upstream.setStatus({ code: otel.SpanStatusCode.ERROR })
    spans.upstream.end()
    spans.upstream = null
  }
  spans.request.setAttributes({
    'http.response.status_code': outcome.status,
    'bouncer.decision': outcome.decision,
    ...(outcome.route ? { 'http.route': outcome.route.id } : {}),
    ...(outcome.code ? { 'bouncer.code': outcome.code } : {}),
    ...(outcome.statement ? { 'bouncer.statement': outcome.statement } : {}),
    ...(outcome.limit ? { 'bouncer.limit': outcome.limit } : {}),
  })
  if (outcome.status >= 500) spans.request.setStatus({ code: otel.SpanStatusCode.ERROR, message: outcome.code ?? undefined })
  spans.request.end()
}
