// Found by an adversarial probe (helper "ws"): a WebSocket handshake still waiting for its upstream's
// answer when a shutdown reached server.shutdown_timeout was not cut (node:http no longer tracks a
// socket it handed over at the upgrade, and the gateway tracked it only once it was a tunnel): the
// drain waited on past the deadline and ended logging "its audit record will not be written". Every
// upgraded socket is now cut at the deadline, and the request recorded as cut by the shutdown.
import { connect } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startRawUpstream, type RawUpstream } from '../helpers/raw-upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let upstream: RawUpstream
let gateway: TestGateway
let db: string

beforeAll(async () => {
  upstream = await startRawUpstream(() => {}) // reads the handshake, never answers it
  gateway = await startTestGateway((dir) => {
    db = join(dir, 'audit.db')
    return {
      server: { shutdown_timeout: '1s' },
      upstreams: [{ name: 'ws', url: upstream.url, timeout: '60s' }],
      routes: [{ id: 'ws', path: '/*', upstream: 'ws', public: true, websocket: true }],
      audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    }
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

it('a handshake its upstream has not answered by the shutdown deadline is cut then, and recorded', async () => {
  const client = connect(Number(new URL(gateway.url).port), '127.0.0.1')
  client.on('error', () => {})
  let closed = false
  client.on('close', () => (closed = true))
  client.write('GET /chat HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ws-pending-1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  await waitFor(() => upstream.heads.length === 1, 'the handshake at the upstream')
  const started = performance.now()
  await gateway.shutdown()
  expect(closed).toBe(true)
  expect(performance.now() - started).toBeLessThan(2_000) // shutdown_timeout, not the close steps' wait after it
  expect(gateway.logs.join('')).not.toContain('will not be written')
  const record = await waitForAuditRecord(db, 'ws-pending-1')
  expect({ status: record.status, detail: record.detail }).toEqual({ status: 499, detail: 'The gateway was shutting down: it cut the answer at server.shutdown_timeout.' })
})
