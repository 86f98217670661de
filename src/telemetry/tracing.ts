// OpenTelemetry spans, exported over OTLP/HTTP, only when telemetry.otlp_endpoint is set: the SDK is
// not even loaded otherwise, and the request path checks one null (no tracing cost when off).
//
// A request gets a server span (a child of the caller's W3C parent when there is one), with child
// spans for authentication and for the upstream call; the upstream call's span id is what goes
// upstream in `traceparent`, and the trace id is the one in the audit record and the logs.
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api'
import type { TelemetryConfig } from '../config/index.ts'
import type { RequestContext } from '../gateway/context.ts'

export interface Tracing {
  readonly tracer: Tracer
  shutdown(): Promise<void>
}

export interface RequestSpans {
  request: Span
  auth: Span | null
  upstream: Span | null
}

/** Loads the SDK and the OTLP exporter; null when no endpoint is configured. */
export async function startTracing(config: TelemetryConfig): Promise<Tracing | null> {
  if (!config.otlp_endpoint) return null
  const [{ BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ])
  const url = config.otlp_endpoint.endsWith('/v1/traces') ? config.otlp_endpoint : `${config.otlp_endpoint.replace(/\/+$/, '')}/v1/traces`
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.service_name }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }), { scheduledDelayMillis: 1_000 })],
  })
  return { tracer: provider.getTracer('bouncer'), shutdown: () => provider.shutdown() }
}

/** The request's server span; the context's trace ids become the span's. */
export function startRequestSpan(tracing: Tracing, ctx: RequestContext): void {
  const incoming = ctx.trace
  const parent = incoming?.parentSpanId
    ? trace.setSpanContext(ROOT_CONTEXT, { traceId: incoming.traceId, spanId: incoming.parentSpanId, traceFlags: parseInt(incoming.flags, 16) & 1, isRemote: true })
    : ROOT_CONTEXT
  const request = tracing.tracer.startSpan(`${ctx.method} gateway`, { kind: SpanKind.SERVER, attributes: { 'http.request.method': ctx.method, 'url.path': ctx.path, 'bouncer.request_id': ctx.id } }, parent)
  const ids = request.spanContext()
  if (incoming) {
    incoming.traceId = ids.traceId
    incoming.spanId = ids.spanId
  }
  ctx.spans = { request, auth: null, upstream: null }
}

function child(tracing: Tracing, ctx: RequestContext, name: string, kind: SpanKind): Span | null {
  if (!ctx.spans) return null
  return tracing.tracer.startSpan(name, { kind }, trace.setSpan(context.active(), ctx.spans.request))
}

export function startAuthSpan(tracing: Tracing, ctx: RequestContext): void {
  if (ctx.spans) ctx.spans.auth = child(tracing, ctx, 'authenticate', SpanKind.INTERNAL)
}

export function endAuthSpan(ctx: RequestContext): void {
  const span = ctx.spans?.auth
  if (!span) return
  if (ctx.identity) span.setAttributes({ 'enduser.id': ctx.identity.sub, 'bouncer.issuer': ctx.identity.issuerName, 'bouncer.roles': ctx.roles.join(',') })
  if (ctx.code !== null) span.setStatus({ code: SpanStatusCode.ERROR, message: ctx.code })
  span.end()
  if (ctx.spans) ctx.spans.auth = null
}

/** The upstream call's span: its id is the parent-id the upstream receives in traceparent. */
export function startUpstreamSpan(tracing: Tracing, ctx: RequestContext, upstream: string): void {
  const span = child(tracing, ctx, `upstream ${upstream}`, SpanKind.CLIENT)
  if (!span || !ctx.spans || !ctx.trace) return
  span.setAttribute('bouncer.upstream', upstream)
  ctx.spans.upstream = span
  ctx.trace.spanId = span.spanContext().spanId
}

/** Ends whatever is still open, with the request's outcome. */
export function endRequestSpans(ctx: RequestContext): void {
  const spans = ctx.spans
  if (!spans) return
  endAuthSpan(ctx)
  if (spans.upstream) {
    if (ctx.upstreamStatus !== null) spans.upstream.setAttribute('http.response.status_code', ctx.upstreamStatus)
    if (ctx.upstreamStatus === null || ctx.upstreamStatus >= 500) spans.upstream.setStatus({ code: SpanStatusCode.ERROR })
    spans.upstream.end()
  }
  spans.request.setAttributes({
    'http.response.status_code': ctx.status,
    'bouncer.decision': ctx.decision,
    ...(ctx.route ? { 'http.route': ctx.route.id } : {}),
    ...(ctx.code ? { 'bouncer.code': ctx.code } : {}),
    ...(ctx.statement ? { 'bouncer.statement': ctx.statement } : {}),
    ...(ctx.limit ? { 'bouncer.limit': ctx.limit } : {}),
  })
  if (ctx.status >= 500) spans.request.setStatus({ code: SpanStatusCode.ERROR, message: ctx.code ?? undefined })
  spans.request.end()
  ctx.spans = null
}
