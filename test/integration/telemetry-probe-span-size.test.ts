// A caller's long path in a span: the server span held url.path whole, up to
// server.max_header_bytes. A few hundred requests with 64 KB paths made export batches of tens of
// megabytes, which a collector refuses (413 above 20 MiB, the OpenTelemetry Collector's default
// max_request_body_size): every span in such a batch, other callers' too, was dropped. Spans now
// keep what the audit record keeps of a caller's value (2,048 characters of a path), marked.
import { readFileSync } from 'node:fs'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { h2Once, startH2Gateway } from '../helpers/h2-gateway.ts'
import { attributesOf, startOtlpReceiver, type ExportedSpan, type OtlpReceiver } from '../helpers/otlp.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'

/** The OpenTelemetry Collector's OTLP/HTTP receiver refuses a body over this (confighttp max_request_body_size). */
const COLLECTOR_LIMIT = 20 * 1024 * 1024

let collector: OtlpReceiver
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  // A real OTLP/HTTP receiver with the Collector's body limit.
  collector = await startOtlpReceiver({ maxBodyBytes: COLLECTOR_LIMIT })
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { max_header_bytes: 65_536 },
    telemetry: { otlp_endpoint: collector.url, service_name: 'bouncer-span-size' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api', public: true }],
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  collector?.close()
})

it('long paths from a caller neither make the export batches too large for the collector nor drop other callers\' spans', async () => {
  const long = `/junk/${'a'.repeat(64_000)}`
  const flood = 1_100
  for (let sent = 0; sent < flood; sent += 50) {
    await Promise.all(Array.from({ length: 50 }, async (_, i) => {
      const id = `flood-${sent + i}`
      const res = await request(`${gateway.url}${long}`, { headers: { 'x-request-id': id } })
      await res.body.dump()
      expect(res.statusCode).toBe(404)
    }))
    if (sent === 500) {
      const res = await request(`${gateway.url}/data/x`, { headers: { 'x-request-id': 'another-caller' } })
      await res.body.dump()
      expect(res.statusCode).toBe(200)
    }
  }
  await waitFor(() => collector.spans.length >= flood + 1 || collector.refused() > 0, 'every span exported, or a batch refused', 20_000)
  expect(collector.refused()).toBe(0)
  expect(await metricValue(gateway.adminUrl, 'bouncer_background_failures_total{task="trace_export"}')).toBe(0)
  const byId = new Map(collector.spans.map((span) => [attributesOf(span)['bouncer.request_id'], attributesOf(span)]))
  expect(byId.get('another-caller')).toMatchObject({ 'url.path': '/data/x', 'http.response.status_code': 200 })
  // The path as the audit record keeps it: its first 2,048 characters, then its length.
  expect(byId.get('flood-0')?.['url.path']).toBe(`${long.slice(0, 2048)}…(truncated, ${long.length} chars)`)
})

it('a made-up method (HTTP/2 takes any token as :method) is kept as the audit record keeps it: 32 characters', async () => {
  const pki = createPki()
  const h2 = await startH2Gateway(pki, upstream.url, { max_header_bytes: 65_536 }, { telemetry: { otlp_endpoint: collector.url } })
  try {
    const method = `X${'Y'.repeat(40_000)}`
    await h2Once(h2.url, readFileSync(pki.ca.cert), { ':method': method, ':path': '/x', 'x-request-id': 'long-method' })
    await waitFor(() => collector.spans.some((span) => attributesOf(span)['bouncer.request_id'] === 'long-method'), 'the span of the long method')
    const attributes = attributesOf(collector.spans.find((span) => attributesOf(span)['bouncer.request_id'] === 'long-method') as ExportedSpan)
    expect(attributes['http.request.method']).toBe('_OTHER')
    expect(attributes['http.request.method_original']).toBe(`${method.slice(0, 32)}…(truncated, ${method.length} chars)`)
  } finally {
    await h2.close()
    pki.close()
  }
})
