// Found by an adversarial probe: an upstream that ignores Upgrade (most servers do) answers a
// WebSocket handshake as it would the GET: with its event stream. The gateway relayed that answer
// as a refused handshake, outside the open tunnels' registry, so adding `Upgrade: websocket` to the
// request kept the stream going after a reload took the route away (and past the credential's
// expiry, its revocation, the drain), all of which end the same stream asked for without it.
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { HANDSHAKE_FIELDS, openRawTunnel } from '../helpers/websocket.ts'

let upstream: TestUpstream
let gw: TestGateway
let db: string
let closed = false
/** Answers held back until the test lets them go (for a drain that begins before they come). */
let holding = false
let heldBack = 0

function config(dir: string, routed = true): Record<string, unknown> {
  return {
    upstreams: [{ name: 'feed', url: upstream.url }],
    routes: [{ id: 'live', path: routed ? '/live/*' : '/elsewhere/*', upstream: 'feed', public: true, websocket: true }],
    audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
  }
}

beforeAll(async () => {
  // No 'upgrade' listener: node:http serves the handshake as the GET it is, with an event every 100 ms.
  upstream = await startUpstream(async (req, res) => {
    if (holding) {
      heldBack++
      await waitFor(() => !holding, 'the test to let the answer go')
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    const timer = setInterval(() => res.write('data: tick\n\n'), 100)
    req.socket.once('close', () => clearInterval(timer))
  })
  gw = await startTestGateway((dir) => {
    db = join(dir, 'audit.db')
    return config(dir)
  })
})
afterAll(async () => {
  if (!closed) await gw?.close()
  await upstream?.close()
})

it('an event stream answering a handshake ends when a reload takes its route away, as the same stream asked for by a GET does', async () => {
  const stream = await openRawTunnel(Number(new URL(gw.url).port), `GET /live/events HTTP/1.1\r\nHost: x\r\nX-Request-Id: sse-upgrade\r\n${HANDSHAKE_FIELDS}\r\n`)
  expect(stream.status).toBe(200)
  await waitFor(() => stream.received().includes('data: tick'), 'the first event')
  await gw.writeConfig(config(gw.dir, false))
  expect((await gw.reload()).ok).toBe(true)
  // Before: it went on, an event every 100 ms.
  await waitFor(() => stream.closed(), 'the stream to end', 5_000)
  // Ended as complete (the chunked answer's last chunk), as an event stream the gateway ends is.
  expect(stream.received().toString().endsWith('0\r\n\r\n')).toBe(true)
  const record = await waitForAuditRecord(db, 'sse-upgrade')
  expect({ status: record.status, detail: record.detail }).toEqual({ status: 200, detail: 'After a config reload, no route takes GET /live/events (route_not_found): the gateway closed the event stream.' })
}, 20_000)

it('one whose answer comes after the drain began is answered, and ended at once, not held to shutdown_timeout', async () => {
  await gw.writeConfig(config(gw.dir))
  expect((await gw.reload()).ok).toBe(true)
  holding = true
  const opening = openRawTunnel(Number(new URL(gw.url).port), `GET /live/events HTTP/1.1\r\nHost: x\r\nX-Request-Id: sse-upgrade-drain\r\n${HANDSHAKE_FIELDS}\r\n`)
  await waitFor(() => heldBack === 1, 'the handshake at the upstream')
  closed = true
  const closing = gw.close()
  await waitFor(() => gw.state.draining, 'the drain to begin')
  holding = false
  const stream = await opening
  expect(stream.status).toBe(200)
  // Default shutdown_timeout (30 s): before, the stream ran on to it.
  await waitFor(() => stream.closed(), 'the stream to end', 5_000)
  expect(stream.received().toString().endsWith('0\r\n\r\n')).toBe(true)
  await closing
}, 20_000)
