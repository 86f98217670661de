// A reload that changes telemetry.otlp_endpoint, service_name or log_level: the tracing exporter
// and the logger are made once, at the start, and the reload answered ok with no warning — an
// operator who turned tracing on saw it accepted and got no span, one who pointed it at a new
// collector had spans go on to the old one. It now says these take effect at the next restart,
// as it does for the listen addresses and the audit section.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let first: OtlpReceiver
let second: OtlpReceiver
let upstream: TestUpstream
let gateway: TestGateway

const configWith = (telemetry: Record<string, unknown>) => ({
  telemetry,
  upstreams: [{ name: 'api', url: upstream.url }],
  routes: [{ id: 'data', path: '/data/*', upstream: 'api', public: true }],
})

beforeAll(async () => {
  first = await startOtlpReceiver()
  second = await startOtlpReceiver()
  upstream = await startUpstream()
  gateway = await startTestGateway(configWith({ otlp_endpoint: first.url }))
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  first?.close()
  second?.close()
})

it('a reload to another collector, service name or log level says it takes effect at the next restart, and spans go where they went', async () => {
  await gateway.writeConfig(configWith({ otlp_endpoint: second.url, service_name: 'renamed', log_level: 'warn' }))
  const reloaded = await gateway.reload()
  expect(reloaded).toMatchObject({ ok: true, warnings: ['a changed telemetry.otlp_endpoint, telemetry.service_name, telemetry.log_level takes effect at the next restart'] })
  const res = await request(`${gateway.url}/data/x`, { headers: { 'x-request-id': 'after-reload' } })
  await res.body.dump()
  await first.requestSpan('after-reload')
  expect(second.spans).toEqual([])
  // Every reload says so until the restart; one that puts the settings back, no longer.
  await gateway.writeConfig(configWith({ otlp_endpoint: first.url }))
  expect(await gateway.reload()).toMatchObject({ ok: true, warnings: [] })
})

it('a reload that changes only trace_url (read at each request) warns of nothing', async () => {
  await gateway.writeConfig(configWith({ otlp_endpoint: first.url, trace_url: 'https://traces.example/t/{trace_id}' }))
  expect(await gateway.reload()).toMatchObject({ ok: true, warnings: [] })
  await waitFor(() => gateway.state.runtime.config.telemetry.trace_url === 'https://traces.example/t/{trace_id}', 'the new trace_url in force')
})
