// A real OTLP/HTTP receiver on loopback (JSON, as the gateway's exporter sends it): the spans it
// was sent, in arrival order, for a test to look up by trace or span id.
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { waitFor } from './wait.ts'

/** A span as OTLP/JSON carries it (the fields the tests read). */
export interface ExportedSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  status?: { code?: number; message?: string }
  attributes: Array<{ key: string; value: Record<string, unknown> }>
  links?: Array<{ traceId: string; spanId: string }>
}

/** A span's attributes as plain values. */
export function attributesOf(span: ExportedSpan): Record<string, unknown> {
  return Object.fromEntries(span.attributes.map((a) => [a.key, Object.values(a.value)[0]]))
}

export interface OtlpReceiver {
  /** What `telemetry.otlp_endpoint` names. */
  url: string
  /** Every span received so far (the array grows as exports come). */
  spans: ExportedSpan[]
  /** The request targets exports were posted to (path and query), taken or not. */
  targets: string[]
  /** Exports answered 404 (not its traces path) or 413 (over `maxBodyBytes`). */
  refused(): number
  /** The span `spanId` (e.g. the parent an upstream received), once exported. */
  span(spanId: string): Promise<ExportedSpan>
  /** The gateway's server span of request `requestId` (its X-Request-Id), once exported. */
  requestSpan(requestId: string): Promise<ExportedSpan>
  close(): void
}

export interface OtlpReceiverOptions {
  /** A body over this is answered 413, as the Collector's max_request_body_size has it (default: none). */
  maxBodyBytes?: number
  /** The query its traces path must carry (`?tenant=a`), as a collector behind a tenant's gateway would; else 404. */
  query?: string
}

/** Takes spans at POST /v1/traces (with `query`, if given), as the OpenTelemetry Collector does; 404 elsewhere. */
export async function startOtlpReceiver(options: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  const spans: ExportedSpan[] = []
  const targets: string[] = []
  let refused = 0
  const limit = options.maxBodyBytes ?? Number.POSITIVE_INFINITY
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    let bytes = 0
    for await (const chunk of req as AsyncIterable<Buffer>) {
      bytes += chunk.length
      if (bytes <= limit) chunks.push(chunk)
    }
    targets.push(req.url ?? '')
    const url = new URL(req.url ?? '/', 'http://collector')
    const status = req.method !== 'POST' || url.pathname !== '/v1/traces' || (options.query !== undefined && url.search !== options.query) ? 404 : bytes > limit ? 413 : 200
    if (status !== 200) {
      refused++
      res.writeHead(status).end()
      return
    }
    const payload = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: ExportedSpan[] }> }> }
    for (const resource of payload.resourceSpans) for (const scope of resource.scopeSpans) spans.push(...scope.spans)
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end('{}')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const exported = async (what: string, matches: (span: ExportedSpan) => boolean) => {
    await waitFor(() => spans.some(matches), what, 10_000)
    return spans.find(matches) as ExportedSpan
  }
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    targets,
    refused: () => refused,
    span: (spanId) => exported(`span ${spanId} exported`, (s) => s.spanId === spanId),
    requestSpan: (requestId) => exported(`the span of request ${requestId}`, (s) => s.kind === 2 && attributesOf(s)['bouncer.request_id'] === requestId),
    close: () => server.close(),
  }
}
