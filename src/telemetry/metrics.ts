// Prometheus metrics (prom-client), one registry per gateway. Label children are cached so the
// request path pays a Map lookup, not prom-client's label hashing, per observation.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { AuditLog } from '../audit/log.ts'
import type { RequestContext } from '../gateway/context.ts'

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

export interface Metrics {
  readonly registry: Registry
  /** Called once per finished request. */
  observeRequest(ctx: RequestContext, seconds: number): void
  keySetEvent(issuer: string, ok: boolean): void
  render(): Promise<{ contentType: string; body: string }>
}

export function createMetrics(sources: { audit: () => AuditLog; inFlight: () => number }): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'bouncer_' })
  const requests = new Counter({ name: 'bouncer_requests_total', help: 'Requests by route, status and decision.', labelNames: ['route', 'status', 'decision'], registers: [registry] })
  const duration = new Histogram({ name: 'bouncer_request_duration_seconds', help: 'Whole request, from first byte in to last byte out.', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers: [registry] })
  const upstreamDuration = new Histogram({ name: 'bouncer_upstream_duration_seconds', help: 'The upstream part: from dispatch to the response headers.', labelNames: ['upstream'], buckets: LATENCY_BUCKETS, registers: [registry] })
  const limited = new Counter({ name: 'bouncer_rate_limited_total', help: 'Requests refused by a limit.', labelNames: ['limit', 'code'], registers: [registry] })
  const keySets = new Counter({ name: 'bouncer_jwks_refreshes_total', help: 'Issuer key-set loads, by result.', labelNames: ['issuer', 'result'], registers: [registry] })
  new Gauge({ name: 'bouncer_requests_in_flight', help: 'Requests being handled now.', registers: [registry], collect() { this.set(sources.inFlight()) } })
  new Gauge({ name: 'bouncer_audit_queue_depth', help: 'Audit records not yet in every sink (queued, in flight, or waiting for a sink).', registers: [registry], collect() { this.set(sources.audit().stats().queueDepth) } })
  new Gauge({ name: 'bouncer_audit_sink_up', help: '1 when an audit sink takes records, 0 while its records spill to disk.', labelNames: ['sink'], registers: [registry], collect() {
    for (const [sink, up] of Object.entries(sources.audit().stats().sinks)) this.set({ sink }, up ? 1 : 0)
  } })
  const fromWorker = (name: string, help: string, read: (s: ReturnType<AuditLog['stats']>) => number) => {
    let seen = 0
    new Counter({ name, help, registers: [registry], collect() {
      const now = read(sources.audit().stats())
      if (now > seen) this.inc(now - seen)
      seen = Math.max(seen, now)
    } })
  }
  fromWorker('bouncer_audit_written_total', 'Audit records written to a sink.', (s) => s.written)
  fromWorker('bouncer_audit_spilled_total', 'Audit records spilled to disk while a sink was away.', (s) => s.spilled)
  fromWorker('bouncer_audit_replayed_total', 'Spilled audit records replayed to their sink.', (s) => s.replayed)
  fromWorker('bouncer_audit_dropped_total', 'Audit records lost (only when a spill file cannot be written): should stay 0.', (s) => s.dropped)

  const requestChildren = new Map<string, Counter.Internal>()
  const durationChildren = new Map<string, Histogram.Internal<'route'>>()
  const upstreamChildren = new Map<string, Histogram.Internal<'upstream'>>()

  return {
    registry,
    observeRequest(ctx, seconds) {
      const route = ctx.route?.id ?? '(none)'
      const key = `${route}\n${ctx.status}\n${ctx.decision}`
      let counter = requestChildren.get(key)
      if (!counter) requestChildren.set(key, (counter = requests.labels(route, String(ctx.status), ctx.decision)))
      counter.inc()
      let histogram = durationChildren.get(route)
      if (!histogram) durationChildren.set(route, (histogram = duration.labels(route)))
      histogram.observe(seconds)
      if (ctx.upstream !== null && ctx.upstreamMs !== null) {
        let upstream = upstreamChildren.get(ctx.upstream)
        if (!upstream) upstreamChildren.set(ctx.upstream, (upstream = upstreamDuration.labels(ctx.upstream)))
        upstream.observe(ctx.upstreamMs / 1000)
      }
      if (ctx.limit !== null && ctx.code !== null) limited.labels(ctx.limit, ctx.code).inc()
    },
    keySetEvent(issuer, ok) {
      keySets.labels(issuer, ok ? 'ok' : 'error').inc()
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() }
    },
  }
}
