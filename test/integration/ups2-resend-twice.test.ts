// The keep-alive race's resend (up3-keep-alive-race) is one extra try: a GET whose resend breaks
// on a kept-alive connection closed as idle too gets a clear 502 upstream_error, the upstream asked
// twice, not a third time; the resend is counted once in bouncer_upstream_retries_total and the
// record's attempts, and the second break, a failure like any (README retries), once.
import { join } from 'node:path'
import type { Socket } from 'node:net'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startRawUpstream } from '../helpers/raw-upstream.ts'
import { metricValue } from '../helpers/wait.ts'

const closeLater = closeAfterEach()

describe('a resend after an idle close that meets another idle close', () => {
  it('gets 502 upstream_error, sent twice in all, counted once', async () => {
    // Two connections warmed at once (each /warm answered when both have come), so the pool keeps
    // two idle; then /x is closed, unanswered, on every connection that answered before.
    const answered = new WeakSet<Socket>()
    const waiting: Socket[] = []
    const upstream = await startRawUpstream((head, socket) => {
      if (head.startsWith('GET /warm ')) {
        waiting.push(socket)
        if (waiting.length < 2) return
        for (const s of waiting.splice(0)) {
          answered.add(s)
          s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
        }
        return
      }
      if (answered.has(socket)) return void socket.destroy()
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnew')
    })
    closeLater(() => upstream.close())
    const gw = await startTestGateway((dir) => ({
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
      audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }] },
    }))
    closeLater(() => gw.close())
    const warm = await Promise.all([request(`${gw.url}/warm`), request(`${gw.url}/warm`)])
    for (const res of warm) expect(await res.body.text()).toBe('ok')

    const res = await request(`${gw.url}/x`, { headers: { 'x-request-id': 'ups2-resend-twice' } })
    const body = await res.body.text()
    expect(upstream.heads.filter((head) => head.startsWith('GET /x ')).length).toBe(2)
    expect(res.statusCode).toBe(502)
    expect(JSON.parse(body)).toMatchObject({ code: 'upstream_error' })
    expect(await metricValue(gw.adminUrl, 'bouncer_upstream_retries_total{upstream="api"}')).toBe(1)
    expect(await metricValue(gw.adminUrl, `bouncer_upstream_target_failures_total{upstream="api",target="${upstream.url}"}`)).toBe(1)
    expect(await metricValue(gw.adminUrl, `bouncer_upstream_target_requests_total{upstream="api",target="${upstream.url}"}`)).toBe(4)
    const record = await waitForAuditRecord(join(gw.dir, 'audit.db'), 'ups2-resend-twice')
    expect(record).toMatchObject({ status: 502, code: 'upstream_error', attempts: 2 })
  })
})
