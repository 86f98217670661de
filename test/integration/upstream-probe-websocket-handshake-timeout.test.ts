// Found by an adversarial probe of the upstream side: a WebSocket handshake goes upstream through
// node:http, whose `timeout` is the socket's idle time, restarted by every byte. An upstream that
// answered the handshake with 102 Processing every 150 ms, or sent its 101 one byte at a time, held
// the handshake, its client and a place under max_concurrent for good; `timeout` bounded only
// silence. Now the handshake's answer head must come whole within `timeout`, as every other
// request's does (undici's headersTimeout): 504 upstream_timeout.
import { connect, type Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startRawUpstream } from '../helpers/raw-upstream.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'
import { HANDSHAKE_FIELDS } from '../helpers/websocket.ts'

const closeLater = closeAfterEach()

/** Writes `text` to the socket one piece every `everyMs` until it is written or the socket goes (`repeat`: for ever). */
function drip(socket: Socket, pieces: string[], everyMs: number, repeat: boolean): void {
  let i = 0
  const timer = setInterval(() => {
    if (socket.destroyed || (!repeat && i >= pieces.length)) {
      clearInterval(timer)
      return
    }
    socket.write(pieces[i++ % pieces.length] as string)
  }, everyMs)
  socket.once('close', () => clearInterval(timer))
}

const SWITCHING = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n'

describe('a WebSocket handshake whose answer head never comes whole', () => {
  const cases: Array<[string, (socket: Socket) => void]> = [
    ['102 Processing every 150 ms', (socket) => drip(socket, ['HTTP/1.1 102 Processing\r\n\r\n'], 150, true)],
    ['its 101 one byte every 150 ms', (socket) => drip(socket, [...SWITCHING], 150, false)],
  ]
  for (const [name, answer] of cases) {
    it(`${name}: 504 upstream_timeout once \`timeout\` has passed, and its place given back`, async () => {
      const up = await startRawUpstream((_head, socket) => answer(socket))
      closeLater(() => up.close())
      const gw = await startTestGateway({
        upstreams: [{ name: 'ws', url: up.url, timeout: '1s', max_concurrent: 1 }],
        routes: [{ id: 'ws', path: '/ws/*', upstream: 'ws', public: true, websocket: true }],
      })
      closeLater(() => gw.close())
      const port = Number(new URL(gw.url).port)
      const started = performance.now()
      // Before the fix: no answer at all, until the client's own 12 s bound.
      const res = await rawRequest(port, `GET /ws/live HTTP/1.1\r\nHost: x\r\n${HANDSHAKE_FIELDS}\r\n`, { timeout: 12_000 })
      expect(res.timedOut).toBe(false)
      expect(res.status).toBe(504)
      expect(JSON.parse(res.body).code).toBe('upstream_timeout')
      expect(performance.now() - started).toBeLessThan(10_000)
      expect(await metricValue(gw.adminUrl, `bouncer_upstream_target_in_flight{upstream="ws",target="${up.url}"}`)).toBe(0)
    })
  }

  it('a 101 that comes whole within `timeout` still opens the tunnel, and it lives past `timeout`', async () => {
    const up = await startRawUpstream((_head, socket) => {
      socket.write(SWITCHING)
      socket.on('data', (chunk: Buffer) => socket.write(chunk)) // echoes what the tunnel carries
    })
    closeLater(() => up.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'ws', url: up.url, timeout: '1s' }],
      routes: [{ id: 'ws', path: '/ws/*', upstream: 'ws', public: true, websocket: true }],
    })
    closeLater(() => gw.close())
    const port = Number(new URL(gw.url).port)
    const socket = connect(port, '127.0.0.1')
    closeLater(async () => void socket.destroy())
    let received = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => (received += chunk))
    socket.write(`GET /ws/live HTTP/1.1\r\nHost: x\r\n${HANDSHAKE_FIELDS}\r\n`)
    await waitFor(() => received.startsWith('HTTP/1.1 101'), 'the 101')
    // Past the head deadline: the open tunnel is not cut by it.
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    socket.write('ping')
    await waitFor(() => received.endsWith('ping'), 'the echo through the tunnel')
    expect(socket.destroyed).toBe(false)
  })
})
