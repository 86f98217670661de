// The keep-alive race, for the health checks: their own connection is kept alive between checks,
// and a target that closed it as idle just as a check went out failed that check, "other side
// closed", though it was up and answering: with unhealthy_after 1 the target was taken out and
// every request got 503 until the checks brought it back. Such a check is asked again on a new
// connection, as a request is (dispatch.ts).
import type { Socket } from 'node:net'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startRawUpstream } from '../helpers/raw-upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const closeLater = closeAfterEach()

describe('a target that closes the health checks\' kept-alive connection as a check goes out', () => {
  it('stays in rotation: the check is asked again on a new connection', async () => {
    // The second check on a connection crosses the target's close of it, once.
    const checks = new WeakMap<Socket, number>()
    let closed = false
    const upstream = await startRawUpstream((head, socket) => {
      if (head.startsWith('GET /healthz ')) {
        const earlier = checks.get(socket) ?? 0
        checks.set(socket, earlier + 1)
        if (earlier > 0 && !closed) {
          closed = true
          return void socket.destroy()
        }
      }
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    })
    closeLater(() => upstream.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', url: upstream.url, health_check: { path: '/healthz', interval: '100ms', timeout: '1s', unhealthy_after: 1, healthy_after: 5 } }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    closeLater(() => gw.close())
    // Checks after the close: its verdict is in.
    await waitFor(() => closed && upstream.heads.filter((head) => head.startsWith('GET /healthz ')).length >= 5, 'checks past the close')
    expect(gw.logs.join('')).not.toContain('upstream target unhealthy')
    const res = await request(`${gw.url}/work`)
    expect(res.statusCode).toBe(200)
    expect(await res.body.text()).toBe('ok')
  })
})
