// telemetry.otlp_endpoint with a query (a collector or a gateway in front of it that takes a tenant
// or a key there): `/v1/traces` was appended to the text, after the query (`/?tenant=a/v1/traces`),
// so the spans were posted to the endpoint's own path — a collector answers 404 and every batch
// was dropped. The path gets `/v1/traces`; the query stays as it was.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'

let collector: OtlpReceiver
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  // A real OTLP/HTTP receiver that takes spans at /v1/traces only, as the Collector does.
  collector = await startOtlpReceiver({ query: '?tenant=a' })
  upstream = await startUpstream()
  gateway = await startTestGateway({
    telemetry: { otlp_endpoint: `${collector.url}/?tenant=a` },
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
  await waitFor(() => collector.targets.length > 0, 'an export')
  expect(collector.targets[0]).toBe('/v1/traces?tenant=a')
  await waitFor(() => collector.spans.length >= 2, 'the request\'s spans taken')
  expect(await metricValue(gateway.adminUrl, 'bouncer_background_failures_total{task="trace_export"}')).toBe(0)
})
