// Prometheus metrics, one registry per gateway: prom-client for the process and gauge metrics, and
// the per-request series (request-metrics.ts) kept as plain numbers, rendered after them.
import type { X509Certificate } from 'node:crypto'
import { createRequire } from 'node:module'
import type * as PromClient from 'prom-client'
import type { Registry } from 'prom-client'
import { BACKGROUND_TASKS, type BackgroundTask } from './background.ts'
import { droppedLogLines } from './logger.ts'
import type { TraceCounters } from './tracing.ts'
import { LabelledHistogram, RequestCounter } from './request-metrics.ts'
import { renderUpstreamMetrics, type UpstreamGauges } from './upstream-metrics.ts'

const CPU_SECONDS: ReadonlyArray<readonly [string, string, (usage: NodeJS.CpuUsage) => number]> = [
  ['bouncer_process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', (usage) => usage.user],
  ['bouncer_process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', (usage) => usage.system],
  ['bouncer_process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', (usage) => usage.user + usage.system],
]

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
/** A WebSocket tunnel's life: seconds to a day. */
const TUNNEL_BUCKETS = [1, 10, 60, 300, 900, 3_600, 14_400, 86_400]

/** What the metrics read of a finished request. */
export interface ObservedRequest {
  route: { id: string } | null
  status: number
  decision: string
  upstream: string | null
  upstreamMs: number | null
  limit: string | null
  code: string | null
}

/** What the metrics read of the audit log, at scrape time. */
export interface AuditGauges {
  queueDepth: number
  sinks: Record<string, boolean>
  written: number
  spilled: number
  replayed: number
  dropped: number
  quarantined: number
  /** Bytes waiting in the spill files. */
  spillBytes: number
}

export interface Metrics extends TraceCounters {
  readonly registry: Registry
  /** Called once per finished request. */
  observeRequest(request: ObservedRequest, seconds: number): void
  /**
   * A request Node's HTTP/1.1 parser refused before the pipeline saw it (408 at headers_timeout,
   * 431, 400): in bouncer_requests_total as route (none), deny, as its audit record is; it has no
   * duration of its own (a probe found slowloris and header floods absent from the metrics).
   */
  countRefusedBeforeRouting(status: number): void
  /** A connection closed unanswered at server.max_connections. */
  countRefusedConnection(): void
  /** An HTTP/2 session node:http2 ended on an error (a flood past its bounds: rapid reset, CONTINUATION, PING), by nghttp2's reason. */
  countHttp2SessionEnded(reason: string): void
  /**
   * A tool call the MCP endpoint decided and audited itself (refused, held for approval, an MCP
   * server's call): in bouncer_requests_total as its record's route, `mcp:<tool>` (a name no tool
   * has, or arguments refused before the tool was found, as (none)), and its limit's refusal counted
   * (an MCP server's call refused by its server's limits, a held call by its route's: the pipeline
   * carried neither).
   */
  observeToolCall(call: ObservedRequest): void
  keySetEvent(issuer: string, ok: boolean): void
  render(): Promise<{ contentType: string; body: string }>
}

/** Where the scrape-time series are read: the audit log, requests in flight, and the running upstreams and their targets. */
export interface MetricSources {
  audit: () => AuditGauges
  inFlight: () => number
  upstreams?: () => Iterable<UpstreamGauges>
  /**
   * Published as `bouncer_instance_info{instance_id}` = 1, not as a label on every series:
   * Prometheus attaches the target's own labels (`instance`, and `pod` through the ServiceMonitor)
   * to each series it scrapes, and its guide for exporters asks to leave that to it; the info
   * series joins a target to the id in the logs and audit records.
   */
  instance?: string
  /** The running config's digest (Runtime.configDigest): `bouncer_config_workers{config_sha256}`. */
  configDigest?: () => string
  /** Whether the last reload was refused (none has succeeded since): `bouncer_config_reload_refused`. */
  reloadRefused?: () => boolean
  /** The certificate the gateway listener serves (null without TLS). */
  tlsCertificate?: () => X509Certificate | null
  /** When each CA's CRL of server.tls.client_crl goes out of date (its nextUpdate, epoch ms), by the CRL's issuer. */
  clientCrlExpiries?: () => Iterable<{ readonly issuer: string; readonly nextUpdateMs: number }>
  /** Limited requests the limits store could not check, by on_error, since the process started. */
  limitsStoreFailures?: () => Readonly<Record<'allow' | 'deny', number>>
  /** Other instances on the shared limits store whose limits differ from this one's (limits/agreement.ts); one worker's. */
  limitsConfigMismatch?: () => number
}

/**
 * prom-client, loaded when a gateway makes its metrics (synchronously: it is CommonJS). Imported at
 * the top, it came (32 modules, and OpenTelemetry's API through its CPU metric) with this folder's
 * logger into every command's start: bouncer keys, audit, secrets, hundreds a test run.
 */
let promClient: typeof PromClient | undefined
const loadPromClient = (): typeof PromClient => (promClient ??= createRequire(import.meta.url)('prom-client') as typeof PromClient)

/**
 * This thread's V8 heap families (prom-client's own, under their names) and nothing else: with
 * server.workers the primary adds them to the workers' merged /metrics, whose heap series summed the
 * request workers only (the primary's heap — admin API, console, supervisor — is the gateway's too).
 */
export function createHeapMetrics(): () => Promise<string> {
  const { collectDefaultMetrics, Registry } = loadPromClient()
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'bouncer_' })
  const heapFamily = /^bouncer_nodejs_(heap_|external_memory_)/
  for (const metric of registry.getMetricsAsArray()) if (!heapFamily.test(metric.name)) registry.removeSingleMetric(metric.name)
  return () => registry.metrics()
}

/**
 * The most `mcp:<name>` route labels bouncer_requests_total takes for the tool calls the MCP endpoint
 * decides (tools, and the resources and prompts of transparent servers, whose names their servers
 * choose); later names are counted as `mcp:(other)`, so no agent or server grows the series without end.
 */
const MAX_TOOL_LABELS = 1_000

export function createMetrics(sources: MetricSources): Metrics {
  const { collectDefaultMetrics, Counter, Gauge, Registry } = loadPromClient()
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'bouncer_' })
  // prom-client counts the CPU used since it was registered: the start (loading modules, compiling
  // the config) was left out, and with server.workers a replaced first worker took the gateway's
  // count back to 0. The process's own totals since it started, as the kernel has them, instead.
  for (const [name, help, read] of CPU_SECONDS) {
    registry.removeSingleMetric(name)
    new Counter({ name, help, registers: [registry], collect() {
      this.reset()
      this.inc(read(process.cpuUsage()) / 1e6)
    } })
  }
  const requests = new RequestCounter('bouncer_requests_total', 'Requests by route, status and decision.')
  const duration = new LabelledHistogram('bouncer_request_duration_seconds', 'Whole request, from first byte in to last byte out.', 'route', LATENCY_BUCKETS)
  // A tunnel's record (status 101) is written when it closes, its duration the connection's life:
  // in the request histogram, an hour-long WebSocket read as an hour of latency on its route (a probe).
  const tunnelDuration = new LabelledHistogram('bouncer_tunnel_duration_seconds', 'WebSocket tunnels, from the handshake to the close (not in bouncer_request_duration_seconds).', 'route', TUNNEL_BUCKETS)
  const upstreamDuration = new LabelledHistogram('bouncer_upstream_duration_seconds', 'The upstream part: from dispatch to the response headers.', 'upstream', LATENCY_BUCKETS)
  const limited = new Counter({ name: 'bouncer_rate_limited_total', help: 'Requests refused by a limit.', labelNames: ['limit', 'code'], registers: [registry] })
  const keySets = new Counter({ name: 'bouncer_jwks_refreshes_total', help: 'Issuer key-set loads, by result.', labelNames: ['issuer', 'result'], registers: [registry] })
  const refusedConnections = new Counter({ name: 'bouncer_connections_refused_total', help: 'Client connections closed unanswered because server.max_connections were open.', registers: [registry] })
  // Logged at debug level only (any client can cause one): a flood was otherwise seen by nobody.
  const endedSessions = new Counter({ name: 'bouncer_http2_sessions_ended_total', help: 'HTTP/2 sessions ended on an error, by reason: most are floods past a bound (rapid reset, CONTINUATION, PING, invalid frames).', labelNames: ['reason'], registers: [registry] })
  // Lines the log's queue dropped for a reader of stderr that stopped reading (logger.ts): this thread's.
  new Counter({ name: 'bouncer_log_lines_dropped_total', help: 'Log lines dropped unwritten: 16 MiB of lines waited for a reader of stderr that stopped reading.', registers: [registry], collect() {
    this.reset()
    this.inc(droppedLogLines())
  } })
  const spansDropped = new Counter({ name: 'bouncer_trace_spans_dropped_total', help: 'Sampled spans dropped unexported: the batch queue was full (the collector slow or away).', registers: [registry] })
  const backgroundFailures = new Counter({ name: 'bouncer_background_failures_total', help: 'Failed runs of background tasks (reload, secrets, keys, audit worker); the gateway kept serving.', labelNames: ['task'], registers: [registry] })
  // Every task's series exists from the start, at 0: an alert on its increase needs a first sample.
  for (const task of Object.keys(BACKGROUND_TASKS) as BackgroundTask[]) backgroundFailures.labels(task).inc(0)
  const configDigest = sources.configDigest
  if (configDigest) {
    // 1 here; summed over the workers in /metrics, so one series counts the workers on each config.
    new Gauge({ name: 'bouncer_config_workers', help: 'Workers running the config of this digest (more than one series: workers on different configs).', labelNames: ['config_sha256'], registers: [registry], collect() {
      this.reset()
      this.set({ config_sha256: configDigest() }, 1)
    } })
  }
  const reloadRefused = sources.reloadRefused
  if (reloadRefused) {
    // 1 while the running config is one a later reload could not replace; summed over the workers.
    new Gauge({ name: 'bouncer_config_reload_refused', help: 'Whether the last config reload was refused and the config before it keeps serving (1), until a reload succeeds.', registers: [registry], collect() {
      this.set(reloadRefused() ? 1 : 0)
    } })
  }
  const tlsCertificate = sources.tlsCertificate
  if (tlsCertificate) {
    // Which certificate each worker serves (one series: all the same) and the earliest expiry, to alert on.
    new Gauge({ name: 'bouncer_tls_certificate_info', help: 'The certificate the gateway listener serves (a second series: workers serving another).', labelNames: ['fingerprint_sha256', 'not_after'], registers: [registry], collect() {
      this.reset()
      const leaf = tlsCertificate()
      if (leaf && !Number.isNaN(leaf.validToDate.getTime())) this.set({ fingerprint_sha256: leaf.fingerprint256, not_after: leaf.validToDate.toISOString() }, 1)
    } })
    // Labelled, so that a listener without TLS has no series at all (an unlabelled gauge reads 0: "expired").
    new Gauge({ name: 'bouncer_tls_certificate_expiry_timestamp_seconds', help: 'When the served certificate expires (Unix time; the earliest over the workers).', labelNames: ['fingerprint_sha256'], registers: [registry], collect() {
      this.reset()
      const leaf = tlsCertificate()
      const notAfter = leaf?.validToDate.getTime() ?? Number.NaN
      if (leaf && !Number.isNaN(notAfter)) this.set({ fingerprint_sha256: leaf.fingerprint256 }, Math.floor(notAfter / 1000))
    } })
  }
  const clientCrlExpiries = sources.clientCrlExpiries
  if (clientCrlExpiries) {
    // As the certificate's: past it, OpenSSL refuses every certificate the CA signed (CRL_HAS_EXPIRED); the earliest over the workers.
    new Gauge({ name: 'bouncer_tls_client_crl_expiry_timestamp_seconds', help: 'When each CA\'s CRL (server.tls.client_crl) goes out of date, its nextUpdate (Unix time): past it, every client certificate that CA signed is refused until a newer CRL is installed.', labelNames: ['issuer'], registers: [registry], collect() {
      this.reset()
      for (const { issuer, nextUpdateMs } of clientCrlExpiries()) this.set({ issuer }, Math.floor(nextUpdateMs / 1000))
    } })
  }
  const storeFailures = sources.limitsStoreFailures
  if (storeFailures) {
    new Counter({ name: 'bouncer_limits_store_failures_total', help: 'Limited requests the limits store could not check: let through unmetered (on_error="allow") or refused 503 limits_unavailable (on_error="deny").', labelNames: ['on_error'], registers: [registry], collect() {
      this.reset()
      const counts = storeFailures()
      this.inc({ on_error: 'allow' }, counts.allow)
      this.inc({ on_error: 'deny' }, counts.deny)
    } })
  }
  const limitsConfigMismatch = sources.limitsConfigMismatch
  if (limitsConfigMismatch) {
    // With server.workers the first worker alone compares: summed over the workers, its value.
    new Gauge({ name: 'bouncer_limits_config_mismatch', help: 'Other gateway instances on the shared limits store (Redis) whose limits differ from this one\'s: each enforces its own on the same buckets (0: they agree).', registers: [registry], collect() {
      this.set(limitsConfigMismatch())
    } })
  }
  if (sources.instance !== undefined) {
    new Gauge({ name: 'bouncer_instance_info', help: 'The instance id this gateway writes in its log lines and audit records.', labelNames: ['instance_id'], registers: [registry] }).set({ instance_id: sources.instance }, 1)
  }
  new Gauge({ name: 'bouncer_requests_in_flight', help: 'Requests being handled now.', registers: [registry], collect() { this.set(sources.inFlight()) } })
  new Gauge({ name: 'bouncer_audit_queue_depth', help: 'Audit records not yet in every sink (queued, in flight, or waiting for a sink).', registers: [registry], collect() { this.set(sources.audit().queueDepth) } })
  new Gauge({ name: 'bouncer_audit_sink_up', help: '1 when an audit sink takes records, 0 while its records spill to disk.', labelNames: ['sink'], registers: [registry], collect() {
    for (const [sink, up] of Object.entries(sources.audit().sinks)) this.set({ sink }, up ? 1 : 0)
  } })
  new Gauge({ name: 'bouncer_audit_spill_bytes', help: 'Bytes of audit records waiting in spill files for their sink (at audit.spill_max_bytes, on_spill_full applies).', registers: [registry], collect() { this.set(sources.audit().spillBytes) } })
  const fromWorker = (name: string, help: string, read: (s: AuditGauges) => number) => {
    let seen = 0
    new Counter({ name, help, registers: [registry], collect() {
      const now = read(sources.audit())
      if (now > seen) this.inc(now - seen)
      seen = Math.max(seen, now)
    } })
  }
  fromWorker('bouncer_audit_written_total', 'Audit records written to a sink.', (s) => s.written)
  fromWorker('bouncer_audit_spilled_total', 'Audit records spilled to disk while a sink was away.', (s) => s.spilled)
  fromWorker('bouncer_audit_replayed_total', 'Spilled audit records replayed to their sink.', (s) => s.replayed)
  fromWorker('bouncer_audit_dropped_total', 'Audit records lost (a spill file that cannot be written; with server.workers, a worker that ended without draining): should stay 0.', (s) => s.dropped)
  fromWorker('bouncer_audit_quarantined_total', 'Spill file lines that were not records, moved to <spill>.quarantine instead of replayed: should stay 0.', (s) => s.quarantined)

  // The tool calls' route labels: the agent names the tool (or a resource, a prompt), so they are bounded.
  const toolLabels = new Set<string>()
  const toolLabel = (call: ObservedRequest): string => {
    const id = call.route?.id
    if (id === undefined || call.code === 'route_not_found' || call.code === 'bad_request') return '(none)'
    if (toolLabels.has(id)) return id
    if (toolLabels.size >= MAX_TOOL_LABELS) return 'mcp:(other)'
    toolLabels.add(id)
    return id
  }
  return {
    registry,
    observeRequest(request, seconds) {
      const route = request.route?.id ?? '(none)'
      requests.inc(route, request.status, request.decision)
      if (request.status === 101) tunnelDuration.observe(route, seconds)
      else duration.observe(route, seconds)
      if (request.upstream !== null && request.upstreamMs !== null) upstreamDuration.observe(request.upstream, request.upstreamMs / 1000)
      if (request.limit !== null && request.code !== null) limited.labels(request.limit, request.code).inc()
    },
    observeToolCall(call) {
      requests.inc(toolLabel(call), call.status, call.decision)
      if (call.limit !== null && call.code !== null) limited.labels(call.limit, call.code).inc()
    },
    countRefusedConnection() {
      refusedConnections.inc()
    },
    countHttp2SessionEnded(reason) {
      endedSessions.labels(reason).inc()
    },
    countRefusedBeforeRouting(status) {
      requests.inc('(none)', status, 'deny')
    },
    keySetEvent(issuer, ok) {
      keySets.labels(issuer, ok ? 'ok' : 'error').inc()
    },
    backgroundFailed(task) {
      backgroundFailures.labels(task).inc()
    },
    spansDropped(count) {
      spansDropped.inc(count)
    },
    async render() {
      const targets = sources.upstreams ? renderUpstreamMetrics(sources.upstreams()) : ''
      const body = `${await registry.metrics()}${requests.render()}${duration.render()}${tunnelDuration.render()}${upstreamDuration.render()}${targets}`
      return { contentType: registry.contentType, body }
    },
  }
}

