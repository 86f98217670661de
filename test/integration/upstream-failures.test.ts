// SPEC "Decisions" step 6: an upstream that refuses, hangs, resets or is saturated gets the right
// code, fast, and the gateway keeps serving.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { request } from 'undici'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { closedPort, startBlackhole } from '../helpers/faults.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { waitFor } from '../helpers/wait.ts'

const closeLater = closeAfterEach()

async function gatewayFor(url: string, upstream: Record<string, unknown> = {}, more: Record<string, unknown> = {}): Promise<TestGateway> {
  const gw = await startTestGateway({
    upstreams: [{ name: 'api', url, ...upstream }],
    routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    ...more,
  })
  closeLater(() => gw.close())
  return gw
}

async function upstreamWith(handler: Parameters<typeof startUpstream>[0]): Promise<TestUpstream> {
  const up = await startUpstream(handler)
  closeLater(() => up.close())
  return up
}

async function problem(url: string) {
  const started = performance.now()
  const res = await request(url)
  const body = (await res.body.json()) as Record<string, unknown>
  return { status: res.statusCode, body, headers: res.headers, ms: performance.now() - started }
}

describe('upstream failures', () => {
  it('an upstream that refuses connections: 502 upstream_unavailable', async () => {
    const gw = await gatewayFor(`http://127.0.0.1:${await closedPort()}`)
    const { status, body, headers } = await problem(`${gw.url}/x`)
    expect(status).toBe(502)
    expect(headers['content-type']).toBe('application/problem+json')
    expect(body).toMatchObject({ code: 'upstream_unavailable', status: 502, request_id: headers['x-request-id'] })
    expect(String(body.detail)).toContain('ECONNREFUSED')
  })

  it('an upstream that never accepts: 502 upstream_unavailable after connect_timeout', async () => {
    const hole = await startBlackhole()
    closeLater(() => hole.close())
    const gw = await gatewayFor(`http://127.0.0.1:${hole.port}`, { connect_timeout: '300ms' })
    const { status, body, ms } = await problem(`${gw.url}/x`)
    expect(status).toBe(502)
    expect(body.code).toBe('upstream_unavailable')
    expect(String(body.detail)).toContain('timed out')
    expect(ms).toBeLessThan(3_000)
  })

  it('an upstream that hangs: 504 upstream_timeout after timeout', async () => {
    const up = await upstreamWith(() => new Promise(() => {}))
    const gw = await gatewayFor(up.url, { timeout: '300ms' })
    const { status, body, ms } = await problem(`${gw.url}/x`)
    expect(status).toBe(504)
    expect(body.code).toBe('upstream_timeout')
    expect(ms).toBeGreaterThanOrEqual(250)
    expect(ms).toBeLessThan(3_000)
  })

  it('an upstream that resets before answering: 502 upstream_error', async () => {
    const up = await upstreamWith((req) => {
      req.socket.resetAndDestroy()
    })
    const gw = await gatewayFor(up.url)
    const { status, body } = await problem(`${gw.url}/x`)
    expect(status).toBe(502)
    expect(body.code).toBe('upstream_error')
  })

  it('an upstream that resets mid-body: the client sees a truncated response, and the gateway keeps serving', async () => {
    let calls = 0
    const up = await upstreamWith((req, res) => {
      calls++
      if (req.url === '/ok') return void res.end('fine')
      res.writeHead(200, { 'content-length': '100000' })
      res.write(Buffer.alloc(10_000, 'a'))
      setTimeout(() => req.socket.resetAndDestroy(), 50)
    })
    const gw = await gatewayFor(up.url)
    const res = await request(`${gw.url}/broken`)
    expect(res.statusCode).toBe(200)
    await expect(res.body.arrayBuffer()).rejects.toThrow()
    const ok = await request(`${gw.url}/ok`)
    expect(await ok.body.text()).toBe('fine')
    expect(calls).toBe(2)
  })

  // The refusal is read by people: an upstream of max_concurrent 1 said "already has 1 requests".
  it('max_concurrent 1: the refusal names one request in the singular', async () => {
    const release: Array<() => void> = []
    const up = await upstreamWith((_req, res) => new Promise<void>((resolve) => release.push(() => { res.end('done'); resolve() })))
    const gw = await gatewayFor(up.url, { max_concurrent: 1 })
    const first = request(`${gw.url}/1`)
    while (release.length < 1) await new Promise((r) => setTimeout(r, 10))
    const second = await problem(`${gw.url}/2`)
    for (const r of release) r()
    expect((await first).statusCode).toBe(200)
    expect(second.body).toMatchObject({ code: 'upstream_saturated', detail: 'Upstream "api" already has 1 request in flight.' })
  })

  it('more than max_concurrent in flight: 503 upstream_saturated, and the others complete', async () => {
    const release: Array<() => void> = []
    const up = await upstreamWith((_req, res) => new Promise<void>((resolve) => release.push(() => { res.end('done'); resolve() })))
    const gw = await gatewayFor(up.url, { max_concurrent: 2 })
    const first = request(`${gw.url}/1`)
    const second = request(`${gw.url}/2`)
    while (release.length < 2) await new Promise((r) => setTimeout(r, 10))
    const third = await problem(`${gw.url}/3`)
    expect(third.status).toBe(503)
    expect(third.body.code).toBe('upstream_saturated')
    expect(third.headers['retry-after']).toBe('1')
    // A client that asks first (Expect: 100-continue) is told 503 before it uploads: it used to get
    // 100 Continue, send its whole body, and then the 503.
    const asked = await rawRequest(Number(new URL(gw.url).port), `POST /5 HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: 50000\r\n\r\n`, { timeout: 3_000 })
    expect(asked.raw.slice(0, 12)).toBe('HTTP/1.1 503')
    expect(JSON.parse(asked.body)).toMatchObject({ code: 'upstream_saturated' })
    for (const r of release) r()
    expect((await first).statusCode).toBe(200)
    expect((await second).statusCode).toBe(200)
    // The slots are free again.
    const fourth = request(`${gw.url}/4`)
    while (release.length < 3) await new Promise((r) => setTimeout(r, 10))
    release[2]?.()
    expect((await fourth).statusCode).toBe(200)
  })

  it('a reload that changes the upstream keeps its requests in flight under max_concurrent (they were forgotten: a third reached it)', async () => {
    const release: Array<() => void> = []
    // The first two are held; any more is answered at once.
    const up = await upstreamWith((_req, res) => release.length >= 2 ? void res.end('more') : new Promise<void>((resolve) => release.push(() => { res.end('done'); resolve() })))
    const gw = await gatewayFor(up.url, { max_concurrent: 2 })
    closeLater(() => release.forEach((r) => r())) // first: the gateway's drain waits for them
    const held = [request(`${gw.url}/1`), request(`${gw.url}/2`)]
    await waitFor(() => release.length === 2, 'two requests at the upstream')
    // Another timeout: the upstream is made again, with the requests of the one before still in flight.
    await gw.writeConfig({ upstreams: [{ name: 'api', url: up.url, max_concurrent: 2, timeout: '29s' }], routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }] })
    expect((await gw.reload()).ok).toBe(true)
    const refused = await problem(`${gw.url}/3`)
    expect({ status: refused.status, code: refused.body.code, reached: up.started.length }).toEqual({ status: 503, code: 'upstream_saturated', reached: 2 })
    for (const r of release) r()
    expect((await Promise.all(held)).map((res) => res.statusCode)).toEqual([200, 200])
  })

  it('a client that leaves before the upstream answers: the upstream request is cancelled, and the record says 499 and why', async () => {
    let asked: () => void = () => {}
    const arrived = new Promise<void>((resolve) => (asked = resolve))
    let upstreamClosed: () => void = () => {}
    const closed = new Promise<void>((resolve) => (upstreamClosed = resolve))
    const up = await upstreamWith((req) => {
      asked()
      req.socket.on('close', () => upstreamClosed())
      return new Promise(() => {})
    })
    const dir = await mkdtemp(join(tmpdir(), 'bouncer-client-left-'))
    closeLater(() => rm(dir, { recursive: true, force: true }))
    const db = join(dir, 'audit.db')
    const gw = await gatewayFor(up.url, {}, { audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill') } })
    const controller = new AbortController()
    const sent = request(`${gw.url}/slow`, { signal: controller.signal, headers: { 'x-request-id': 'client-left-early' } })
    await arrived
    controller.abort()
    await expect(sent).rejects.toThrow()
    await closed
    const record = await waitForAuditRecord(db, 'client-left-early')
    expect(record).toMatchObject({ status: 499, decision: 'allow', code: null, upstream: 'api', upstream_status: null, detail: 'The client closed the connection before the answer began.' })

    // The upstream's head came, but no body byte: the gateway held the head, so the client got nothing either.
    const slowBody = await upstreamWith((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.flushHeaders()
      return new Promise(() => {})
    })
    // undici publishes a response head just before its handler (the gateway's) takes it: the one answer the test waits for.
    const headed = new Promise<void>((resolve) => {
      const seen = () => {
        unsubscribe('undici:request:headers', seen)
        resolve()
      }
      subscribe('undici:request:headers', seen)
    })
    const db2 = join(dir, 'audit2.db')
    const gw2 = await gatewayFor(slowBody.url, {}, { audit: { sinks: [{ type: 'sqlite', path: db2 }], spill_dir: join(dir, 'spill2') } })
    const second = new AbortController()
    const waiting = request(`${gw2.url}/slow`, { signal: second.signal, headers: { 'x-request-id': 'client-left-head-held' } })
    await headed
    second.abort()
    await expect(waiting).rejects.toThrow()
    const held = await waitForAuditRecord(db2, 'client-left-head-held')
    expect(held).toMatchObject({ status: 499, upstream_status: 200, detail: 'The client closed the connection before the answer began.' })
  })

  it('a client that hangs up mid-response: the upstream request is cancelled', async () => {
    let upstreamClosed: () => void = () => {}
    const closed = new Promise<void>((resolve) => (upstreamClosed = resolve))
    const up = await upstreamWith((_req, res) => {
      res.writeHead(200)
      const timer = setInterval(() => res.write(Buffer.alloc(16_384)), 5)
      res.on('close', () => {
        clearInterval(timer)
        upstreamClosed()
      })
    })
    const gw = await gatewayFor(up.url)
    const controller = new AbortController()
    const res = await request(`${gw.url}/stream`, { signal: controller.signal })
    expect(res.statusCode).toBe(200)
    controller.abort()
    await expect(Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('upstream still streaming')), 3_000))])).resolves.toBeUndefined()
    await new Promise((r) => setTimeout(r, 50))
    expect(gw.state.inFlight).toBe(0)
  })
})
