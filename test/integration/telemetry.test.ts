// Tracing, metrics and logs: spans received by a real OTLP/HTTP receiver with the trace ids the
// audit record and the upstream see, Prometheus metrics, and redacted logs.
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { createLogger } from '../../src/telemetry/logger.ts'
import { createPki } from '../helpers/certs.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { h2Once, startH2Gateway } from '../helpers/h2-gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp.ts'
import { waitFor } from '../helpers/wait.ts'


let receiver: OtlpReceiver
let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
const ADMIN = 'telemetry-admin-token-0123456789'

beforeAll(async () => {
  receiver = await startOtlpReceiver()
  dir = await mkdtemp(join(tmpdir(), 'bouncer-telemetry-'))
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway({
    admin: { token: ADMIN },
    telemetry: { otlp_endpoint: receiver.url, service_name: 'bouncer-test' },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '10ms' },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    limits: [{ name: 'tiny', key: 'principal', rate: '1/m', burst: 1 }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [
      { id: 'data', path: '/data/*', upstream: 'api' },
      { id: 'tiny', path: '/tiny', upstream: 'api', limits: ['tiny'] },
    ],
  })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})

afterAll(async () => {
  await gateway.close()
  await upstream.close()
  await idp.stop()
  receiver.close()
  await rm(dir, { recursive: true, force: true })
})

async function auditTraceId(requestId: string): Promise<string | null> {
  let traceId: string | null | undefined
  await waitFor(async () => {
    const records = await searchAudit({ type: 'sqlite', path: join(dir, 'audit.db') }, { limit: 50 }).catch(() => [])
    traceId = records.find((r) => r.request_id === requestId)?.trace_id
    return traceId !== undefined
  }, 'the audit record')
  return traceId ?? null
}

describe('OpenTelemetry traces over OTLP/HTTP', () => {
  it('a continued trace: gateway, authenticate and upstream spans, with the ids the upstream and the audit log see', async () => {
    const token = await idp.token('looker-reports')
    const incoming = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', parent: '00f067aa0ba902b7' }
    const res = await request(`${gateway.url}/data/x`, { headers: { authorization: `Bearer ${token}`, traceparent: `00-${incoming.traceId}-${incoming.parent}-01`, 'x-request-id': 'traced-1' } })
    const received = (await res.body.json()) as Received
    await waitFor(() => receiver.spans.filter((s) => s.traceId === incoming.traceId).length >= 3, 'three spans', 10_000)
    const trace = receiver.spans.filter((s) => s.traceId === incoming.traceId)
    const server = trace.find((s) => s.name === 'GET gateway')!
    const auth = trace.find((s) => s.name === 'authenticate')!
    const up = trace.find((s) => s.name === 'upstream api')!
    expect(server).toMatchObject({ kind: 2, parentSpanId: incoming.parent })
    expect(auth.parentSpanId).toBe(server.spanId)
    expect(up).toMatchObject({ kind: 3, parentSpanId: server.spanId })
    expect(received.headers.traceparent).toBe(`00-${incoming.traceId}-${up.spanId}-01`)
    expect(await auditTraceId('traced-1')).toBe(incoming.traceId)
    const attributes = Object.fromEntries(server.attributes.map((a) => [a.key, Object.values(a.value)[0]]))
    expect(attributes).toMatchObject({ 'http.route': 'data', 'http.response.status_code': 200, 'bouncer.decision': 'allow' })
  })

  it('a new trace: the same id in the spans, the upstream request and the audit record', async () => {
    const res = await request(`${gateway.url}/data/y`, { headers: { authorization: `Bearer ${await idp.token('looker-reports')}`, 'x-request-id': 'traced-2' } })
    const received = (await res.body.json()) as Received
    const traceId = String(received.headers.traceparent).split('-')[1] as string
    expect(await auditTraceId('traced-2')).toBe(traceId)
    await waitFor(() => receiver.spans.some((s) => s.traceId === traceId && s.name === 'GET gateway'), 'the request span', 10_000)
  })

  it('a refused request is traced too, with its code', async () => {
    const res = await request(`${gateway.url}/data/z`, { headers: { 'x-request-id': 'traced-3' } })
    await res.body.dump()
    const traceId = (await auditTraceId('traced-3')) as string
    await waitFor(() => receiver.spans.some((s) => s.traceId === traceId), 'the span', 10_000)
    const server = receiver.spans.find((s) => s.traceId === traceId && s.name === 'GET gateway')!
    expect(server.attributes.find((a) => a.key === 'bouncer.code')?.value).toEqual({ stringValue: 'missing_token' })
  })

  it('a caller\'s unsampled traceparent does not turn the gateway\'s spans off: recorded, and sent upstream as sampled', async () => {
    // The SDK's default sampler followed the caller's flag: with `-00`, any client had none of its requests traced.
    const traceId = '5bf92f3577b34da6a3ce929d0e0e4737'
    const res = await request(`${gateway.url}/data/unsampled`, { headers: { authorization: `Bearer ${await idp.token('looker-reports')}`, traceparent: `00-${traceId}-00f067aa0ba902b7-00` } })
    const received = (await res.body.json()) as Received
    await waitFor(() => receiver.spans.some((s) => s.traceId === traceId && s.name === 'upstream api'), 'the spans of the unsampled request', 10_000)
    const up = receiver.spans.find((s) => s.traceId === traceId && s.name === 'upstream api')!
    expect(received.headers.traceparent).toBe(`00-${traceId}-${up.spanId}-01`)
  })

  it('a span\'s url.path is the path alone: a token in the query string is not exported', async () => {
    // It was the target as sent, query and all, so `?access_token=…` reached the tracing backend.
    const token = await idp.token('looker-reports')
    const res = await request(`${gateway.url}/data/q?access_token=${token}&page=2`, { headers: { 'x-request-id': 'traced-query' } })
    await res.body.dump()
    const traceId = (await auditTraceId('traced-query')) as string
    await waitFor(() => receiver.spans.some((s) => s.traceId === traceId && s.name === 'GET gateway'), 'the request span', 10_000)
    const server = receiver.spans.find((s) => s.traceId === traceId && s.name === 'GET gateway')!
    expect(server.attributes.find((a) => a.key === 'url.path')?.value).toEqual({ stringValue: '/data/q' })
    expect(JSON.stringify(receiver.spans.filter((s) => s.traceId === traceId))).not.toContain(token.slice(-20))
    // An absolute-form target: its user:password@ is not the path either.
    const port = new URL(gateway.url).port
    await rawRequest(Number(port), `GET http://ops:hunter2-in-url@127.0.0.1:${port}/data/abs?sig=abc HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Request-Id: traced-absolute\r\nConnection: close\r\n\r\n`)
    const absoluteId = (await auditTraceId('traced-absolute')) as string
    await waitFor(() => receiver.spans.some((s) => s.traceId === absoluteId && s.name === 'GET gateway'), 'the absolute-form request span', 10_000)
    const absolute = receiver.spans.find((s) => s.traceId === absoluteId && s.name === 'GET gateway')!
    expect(absolute.attributes.find((a) => a.key === 'url.path')?.value).toEqual({ stringValue: '/data/abs' })
  })
  it('a method HTTP/2 lets a client make up names no span: each was a span name of its own in the tracing backend', async () => {
    const pki = createPki()
    const h2 = await startH2Gateway(pki, upstream.url, {}, { telemetry: { otlp_endpoint: receiver.url } })
    try {
      const ca = readFileSync(pki.ca.cert)
      for (const [method, id] of [['FOO1', 'made-up-1'], ['FOO2', 'made-up-2'], ['PATCH', 'known-method']]) {
        await h2Once(h2.url, ca, { ':method': method, ':path': '/x', 'x-request-id': id })
      }
      const spanOf = (id: string) => receiver.spans.find((s) => s.name.endsWith(' gateway') && s.attributes.some((a) => a.key === 'bouncer.request_id' && a.value.stringValue === id))
      await waitFor(() => ['made-up-1', 'made-up-2', 'known-method'].every((id) => spanOf(id) !== undefined), 'the three spans', 10_000)
      const attribute = (id: string, key: string) => spanOf(id)?.attributes.find((a) => a.key === key)?.value
      expect([spanOf('made-up-1')?.name, spanOf('made-up-2')?.name, spanOf('known-method')?.name]).toEqual(['HTTP gateway', 'HTTP gateway', 'PATCH gateway'])
      expect(attribute('made-up-1', 'http.request.method')).toEqual({ stringValue: '_OTHER' })
      expect(attribute('made-up-1', 'http.request.method_original')).toEqual({ stringValue: 'FOO1' })
    } finally {
      await h2.close()
      pki.close()
    }
  })
})

describe('Prometheus metrics', () => {
  it('counts requests, latencies, refusals, key refreshes and the audit queue', async () => {
    const token = await idp.token('looker-reports')
    await (await request(`${gateway.url}/tiny`, { headers: { authorization: `Bearer ${token}` } })).body.dump()
    await (await request(`${gateway.url}/tiny`, { headers: { authorization: `Bearer ${token}` } })).body.dump()
    const res = await request(`${gateway.adminUrl}/metrics`)
    expect(res.headers['content-type']).toContain('text/plain')
    const text = await res.body.text()
    expect(text).toMatch(/^bouncer_requests_total\{route="data",status="200",decision="allow"\} \d+$/m)
    expect(text).toMatch(/^bouncer_requests_total\{route="tiny",status="429",decision="deny"\} 1$/m)
    expect(text).toMatch(/^bouncer_request_duration_seconds_bucket\{le="0\.005",route="data"\} \d+$/m)
    expect(text).toMatch(/^bouncer_upstream_duration_seconds_count\{upstream="api"\} \d+$/m)
    expect(text).toMatch(/^bouncer_rate_limited_total\{limit="tiny",code="rate_limited"\} 1$/m)
    expect(text).toMatch(/^bouncer_jwks_refreshes_total\{issuer="corp",result="ok"\} [1-9]\d*$/m)
    expect(text).toMatch(/^bouncer_audit_queue_depth \d+$/m)
    expect(text).toMatch(/^bouncer_audit_dropped_total 0$/m)
    expect(text).toMatch(/^bouncer_audit_sink_up\{sink="sqlite:.*audit\.db"\} 1$/m)
    expect(text).toMatch(/^bouncer_process_resident_memory_bytes \d+/m)
  })
})

describe('logs', () => {
  it('are JSON lines with credentials redacted, by field and in free text', () => {
    const lines: string[] = []
    const logger = createLogger({ destination: new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) }) })
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz'
    logger.warn({ headers: { authorization: `Bearer ${jwt}` }, token: jwt, secret: 'hunter2-long', upstream: { password: 'p4ssw0rd!' } }, `refused Bearer ${jwt} and Basic dXNlcjpwYXNzd29yZA==`)
    const line = JSON.parse(lines[0] as string) as Record<string, unknown>
    expect(line).toMatchObject({ level: 'warn', service: 'bouncer', token: '[redacted]', secret: '[redacted]', headers: { authorization: '[redacted]' }, upstream: { password: '[redacted]' } })
    expect(lines[0]).not.toContain(jwt)
    expect(lines[0]).not.toContain('hunter2')
    expect(lines[0]).not.toContain('dXNlcjpwYXNzd29yZA')
    expect(line.msg).toBe('refused Bearer [redacted] and Basic [redacted]')
  })
})
