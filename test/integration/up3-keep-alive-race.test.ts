// The keep-alive race: an upstream closes an idle keep-alive connection just as the gateway sends a
// request on it (its idle timeout shorter than the pool's, no Keep-Alive hint). The request broke
// off with nothing of an answer, and a GET got 502 although it could be sent again on a new
// connection, as nginx (an extra try after an error on a cached connection) and Go's transport do.
// A request that may have been acted on is not: a POST written on that connection gets its 502.
import type { Socket } from 'node:net'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startRawUpstream } from '../helpers/raw-upstream.ts'
import { metricValue } from '../helpers/wait.ts'

const closeLater = closeAfterEach()

describe('an upstream that closes a kept-alive connection as a request is sent on it', () => {
  it('a GET is sent again on a new connection; a POST is not, and gets its 502', async () => {
    // Each connection's first request is answered and kept alive; the first of a path on a
    // connection that answered before is what crosses the upstream's close of it: FIN for /fin, RST
    // for /rst, never answered. Once a path: another kept-alive connection was not closed.
    const answered = new WeakMap<Socket, number>()
    const closedOn = new Set<string>()
    const upstream = await startRawUpstream((head, socket) => {
      const path = head.split(' ')[1] as string
      const earlier = answered.get(socket) ?? 0
      answered.set(socket, earlier + 1)
      if (earlier > 0 && (path === '/fin' || path === '/rst') && !closedOn.has(path)) {
        closedOn.add(path)
        return void (path === '/fin' ? socket.destroy() : socket.resetAndDestroy())
      }
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    })
    closeLater(() => upstream.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    closeLater(() => gw.close())
    const send = async (method: string, path: string) => {
      const res = await request(`${gw.url}${path}`, { method, body: method === 'POST' ? 'order=1' : undefined })
      return { status: res.statusCode, body: await res.body.text() }
    }
    const sent = (line: string) => upstream.heads.filter((head) => head.startsWith(line)).length

    for (const path of ['/fin', '/rst']) {
      // One connection, answered and idle: the next request goes on it.
      expect(await send('GET', '/warm')).toEqual({ status: 200, body: 'ok' })
      expect(await send('GET', path)).toEqual({ status: 200, body: 'ok' })
      expect(sent(`GET ${path} `)).toBe(2)
    }
    // A closed idle connection says nothing of the target's health.
    expect(await metricValue(gw.adminUrl, `bouncer_upstream_target_failures_total{upstream="api",target="${upstream.url}"}`)).toBe(0)

    closedOn.clear()
    expect(await send('GET', '/warm')).toEqual({ status: 200, body: 'ok' })
    const post = await send('POST', '/fin')
    expect(post.status).toBe(502)
    expect(JSON.parse(post.body)).toMatchObject({ code: 'upstream_error' })
    expect(sent('POST /fin ')).toBe(1)
  })
})
