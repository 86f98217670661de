// Found by an adversarial probe of the upstream side: a WebSocket handshake goes upstream through
// node:http, which has no connect timeout of its own, so `connect_timeout` did not apply to it. A
// target that answered no SYN (a black hole: a host gone from the network) held the handshake for
// the whole `timeout` and then gave 504 upstream_timeout, a `timeout` to ejection, where every
// other request gets 502 upstream_unavailable at `connect_timeout`, a connect failure.
import { describe, expect, it } from 'vitest'
import { startBlackhole } from '../helpers/faults.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { rawRequest } from '../helpers/raw.ts'
import { metricValue } from '../helpers/wait.ts'
import { HANDSHAKE_FIELDS } from '../helpers/websocket.ts'

const closeLater = closeAfterEach()

describe('a WebSocket handshake to a target that answers no SYN', () => {
  it('is 502 upstream_unavailable at `connect_timeout`, as any request is, not 504 at `timeout`', async () => {
    const hole = await startBlackhole()
    closeLater(async () => hole.close())
    const target = `http://127.0.0.1:${hole.port}`
    const gw = await startTestGateway({
      upstreams: [{ name: 'ws', url: target, connect_timeout: '500ms', timeout: '8s' }],
      routes: [{ id: 'ws', path: '/ws/*', upstream: 'ws', public: true, websocket: true }],
    })
    closeLater(() => gw.close())
    const started = performance.now()
    const res = await rawRequest(Number(new URL(gw.url).port), `GET /ws/live HTTP/1.1\r\nHost: x\r\n${HANDSHAKE_FIELDS}\r\n`, { timeout: 15_000 })
    const took = performance.now() - started
    expect(res.status).toBe(502)
    expect(JSON.parse(res.body)).toMatchObject({ code: 'upstream_unavailable', detail: 'Upstream "ws" is unavailable: the connection timed out.' })
    // Before the fix: 504 after the 8 s `timeout`.
    expect(took).toBeLessThan(6_000)
    expect(await metricValue(gw.adminUrl, `bouncer_upstream_target_failures_total{upstream="ws",target="${target}"}`)).toBe(1)
    expect(await metricValue(gw.adminUrl, `bouncer_upstream_target_in_flight{upstream="ws",target="${target}"}`)).toBe(0)
  })
})
