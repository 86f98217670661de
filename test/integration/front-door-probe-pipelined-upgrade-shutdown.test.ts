// Found by the front-door probe: a WebSocket handshake pipelined behind a request waits for that
// request's answer (front-door-probe-pipelined-upgrade.test.ts); node:http no longer counts a socket
// it handed over at the upgrade among its connections, so the request ahead, its upstream not
// answering, was not cut at server.shutdown_timeout: the drain waited on past the deadline and
// ended saying its audit record would not be written. The socket is the tunnels' from the
// handshake on, as an unanswered handshake's is (websocket-shutdown-pending.test.ts).
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
  upstream = await startRawUpstream(() => {}) // reads the request, never answers it
  gateway = await startTestGateway((dir) => {
    db = join(dir, 'audit.db')
    return {
      server: { shutdown_timeout: '1s' },
      upstreams: [{ name: 'api', url: upstream.url, timeout: '60s' }],
      routes: [
        { id: 'ws', path: '/ws', upstream: 'api', public: true, websocket: true },
        { id: 'all', path: '/*', upstream: 'api', public: true },
      ],
      audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    }
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

it('the request ahead of a pipelined handshake, unanswered at the shutdown deadline, is cut then and recorded', async () => {
  const client = connect(Number(new URL(gateway.url).port), '127.0.0.1')
  client.on('error', () => {})
  let closed = false
  client.on('close', () => (closed = true))
  client.write('GET /slow HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ahead-of-handshake\r\n\r\nGET /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  await waitFor(() => upstream.heads.length === 1, 'the first request at the upstream')
  const started = performance.now()
  await gateway.shutdown()
  expect(closed).toBe(true)
  expect(performance.now() - started).toBeLessThan(2_000)
  expect(gateway.logs.join('')).not.toContain('will not be written')
  const record = await waitForAuditRecord(db, 'ahead-of-handshake')
  expect(record.status).toBe(499)
})
