// Found by an adversarial probe of the upstream side: undici restarts its head timer at every 1xx
// it reads (client-h1.js refreshes the headers timeout), so an upstream that sends `102 Processing`
// or `103 Early Hints` every few hundred milliseconds and never a final answer held its request,
// its client and an upstream connection (and a place under max_concurrent) for as long as it liked:
// `timeout` bounded nothing. Now a 1xx that comes more than `timeout` after the try's first 1xx
// ends it as the head timeout would: 504 upstream_timeout, a `timeout` to retries and ejection.
import type { Socket } from 'node:net'
import { join } from 'node:path'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startRawUpstream } from '../helpers/raw-upstream.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'

const closeLater = closeAfterEach()

/** An upstream that answers every request with an endless run of 1xx interim answers, one every `everyMs`. */
async function interimFlood(status: number, everyMs: number) {
  const floods = new Set<NodeJS.Timeout>()
  const up = await startRawUpstream((_head, socket: Socket) => {
    const timer = setInterval(() => {
      if (socket.destroyed) clearInterval(timer)
      else socket.write(`HTTP/1.1 ${status} Interim\r\nLink: </style.css>; rel=preload\r\n\r\n`)
    }, everyMs)
    floods.add(timer)
    socket.once('close', () => clearInterval(timer))
  })
  closeLater(async () => {
    for (const timer of floods) clearInterval(timer)
    await up.close()
  })
  return up
}

describe('an upstream that sends 1xx answers and never a final one', () => {
  for (const status of [102, 103]) {
    it(`${status} every 150 ms is 504 upstream_timeout once \`timeout\` has passed, audited as such`, async () => {
      const up = await interimFlood(status, 150)
      const gw = await startTestGateway((dir) => ({
        upstreams: [{ name: 'api', url: up.url, timeout: '1s' }],
        routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
        audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '20ms', spill_dir: join(dir, 'spill') },
      }))
      closeLater(() => gw.close())
      const started = performance.now()
      // Before the fix the request never ended: the client's own 15 s bound said so.
      const res = await request(`${gw.url}/slow`, { signal: AbortSignal.timeout(15_000) })
      const body = (await res.body.json()) as { code: string }
      const took = performance.now() - started
      expect(res.statusCode).toBe(504)
      expect(body.code).toBe('upstream_timeout')
      // The first 1xx more than 1 s after the first ends it: well under the 15 s bound, whatever the load.
      expect(took).toBeGreaterThanOrEqual(900)
      expect(took).toBeLessThan(10_000)
      const record = await waitForAuditRecord(join(gw.dir, 'audit.db'), String(res.headers['x-request-id']))
      expect(record.status).toBe(504)
      expect(record.code).toBe('upstream_timeout')
      expect(await metricValue(gw.adminUrl, `bouncer_upstream_target_in_flight{upstream="api",target="${up.url}"}`)).toBe(0)
    })
  }

  it('a few 1xx before a final answer within `timeout` still pass: the answer is relayed', async () => {
    const up = await startRawUpstream((_head, socket) => {
      socket.write('HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n')
      setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 100)
    })
    closeLater(() => up.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', url: up.url, timeout: '2s' }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    closeLater(() => gw.close())
    const res = await request(`${gw.url}/x`)
    expect(res.statusCode).toBe(200)
    expect(await res.body.text()).toBe('ok')
  })

  it('a try that waited for a pool connection and then gets an Early Hints is not cut short', async () => {
    // max_connections 1: /first holds the one connection 2 s; /second waits for it (under its 3 s
    // `timeout`), then gets a 103 after 1.2 s and its answer right after: 3.2 s after its dispatch,
    // but 0.1 s after its first 1xx.
    const up = await startRawUpstream((head, socket) => {
      if (head.startsWith('GET /first ')) setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst'), 2_000)
      else {
        setTimeout(() => socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n'), 1_200)
        setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond'), 1_300)
      }
    })
    closeLater(() => up.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', url: up.url, timeout: '3s', max_connections: 1 }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    closeLater(() => gw.close())
    const first = request(`${gw.url}/first`)
    await waitFor(() => up.heads.length === 1, 'the first request upstream')
    const second = await request(`${gw.url}/second`, { signal: AbortSignal.timeout(15_000) })
    expect(second.statusCode).toBe(200)
    expect(await second.body.text()).toBe('second')
    expect(await (await first).body.text()).toBe('first')
  })

  it('with retries on `timeout`, a GET goes on to another target after the flood', async () => {
    const flood = await interimFlood(102, 150)
    const ok = await startRawUpstream((_head, socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'))
    closeLater(() => ok.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', targets: [flood.url, ok.url], balance: 'round_robin', timeout: '1s', retries: { attempts: 2, on: ['timeout'] } }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    closeLater(() => gw.close())
    const answers = await Promise.all([1, 2].map(async () => {
      const res = await request(`${gw.url}/x`, { signal: AbortSignal.timeout(15_000) })
      return [res.statusCode, await res.body.text()]
    }))
    expect(answers).toEqual([[200, 'ok'], [200, 'ok']])
    expect(flood.heads.length).toBe(1)
  })
})
