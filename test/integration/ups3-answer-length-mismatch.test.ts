// An answer whose framing contradicts itself (Content-Length beside Transfer-Encoding: chunked, two
// different Content-Lengths: a response-splitting upstream or a broken proxy in front of it) is 502
// upstream_error, never relayed; its detail said only that the upstream "failed mid-exchange",
// which names nothing to look for. It says the body did not match its Content-Length.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startRawUpstream } from '../helpers/raw-upstream.ts'

const closeLater = closeAfterEach()

const ANSWERS: Record<string, string> = {
  '/te-and-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
  '/two-lengths': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!',
}

describe('an answer whose length contradicts its framing', () => {
  it('is 502 upstream_error saying so, not "failed mid-exchange"', async () => {
    const upstream = await startRawUpstream((head, socket) => {
      const path = /^GET (\S+)/.exec(head)?.[1] ?? ''
      socket.write(ANSWERS[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')
    })
    closeLater(() => upstream.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    closeLater(() => gw.close())
    for (const path of Object.keys(ANSWERS)) {
      const res = await request(`${gw.url}${path}`)
      const problem = (await res.body.json()) as { code: string; detail: string }
      expect({ path, status: res.statusCode, code: problem.code }).toEqual({ path, status: 502, code: 'upstream_error' })
      expect(problem.detail).toMatch(/body that did not match its Content-Length/)
    }
  })
})
