// telemetry.otlp_endpoint with a query (a collector or a gateway in front of it that takes a tenant
// or a key there): `/v1/traces` was appended to the text, after the query (`/?tenant=a/v1/traces`),
// so the spans were posted to the endpoint's own path — a collector answers 404 and every batch
// was dropped. The path gets `/v1/traces`; the query stays as it was.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'

let collector: Server
/** The request targets the collector was sent, and the spans posted to its traces path. */
const targets: string[] = []
let spans = 0
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  // A real OTLP/HTTP receiver that takes spans at /v1/traces only, as the Collector does.
  collector = createServer(async (req, res) => {
    let body = ''
    for await (const chunk of req as AsyncIterable<Buffer>) body += chunk.toString('utf8')
    targets.push(req.url ?? '')
    const url = new URL(req.url ?? '/', 'http://collector')
    if (req.method !== 'POST' || url.pathname !== '/v1/traces' || url.searchParams.get('tenant') !== 'a') {
      res.writeHead(404).end()
      return
    }
    const payload = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: unknown[] }> }> }
    for (const resource of payload.resourceSpans) for (const scope of resource.scopeSpans) spans += scope.spans.length
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
  })
  collector.listen(0, '127.0.0.1')
  await once(collector, 'listening')
  upstream = await startUpstream()
  gateway = await startTestGateway({
    telemetry: { otlp_endpoint: `http://127.0.0.1:${(collector.address() as AddressInfo).port}/?tenant=a` },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api', public: true }],
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  collector?.close()
})

it('spans go to /v1/traces with the endpoint\'s query, and are taken', async () => {
  const res = await request(`${gateway.url}/data/x`)
  await res.body.dump()
  await waitFor(() => targets.length > 0, 'an export')
  expect(targets[0]).toBe('/v1/traces?tenant=a')
  await waitFor(() => spans >= 2, 'the request\'s spans taken')
  expect(await metricValue(gateway.adminUrl, 'bouncer_background_failures_total{task="trace_export"}')).toBe(0)
})
