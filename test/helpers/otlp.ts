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
  /** The span `spanId` (e.g. the parent an upstream received), once exported. */
  span(spanId: string): Promise<ExportedSpan>
  /** The gateway's server span of request `requestId` (its X-Request-Id), once exported. */
  requestSpan(requestId: string): Promise<ExportedSpan>
  close(): void
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ExportedSpan[] = []
  const server = createServer(async (req, res) => {
    let body = ''
    for await (const chunk of req) body += chunk
    if (req.url === '/v1/traces') {
      const payload = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: ExportedSpan[] }> }> }
      for (const resource of payload.resourceSpans) for (const scope of resource.scopeSpans) spans.push(...scope.spans)
    }
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
    span: (spanId) => exported(`span ${spanId} exported`, (s) => s.spanId === spanId),
    requestSpan: (requestId) => exported(`the span of request ${requestId}`, (s) => s.kind === 2 && attributesOf(s)['bouncer.request_id'] === requestId),
    close: () => server.close(),
  }
}
