// Found by a probe: an answer the gateway cut because its client stopped reading (server.send_timeout)
// was audited as a plain 200 allow with no detail, only bytes_out hinting at the cut. The record now
// says why the answer ended there.
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, writeLargeAnswer, type TestUpstream } from '../helpers/upstream.ts'

const MB = 1024 * 1024
let dir: string
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-send-timeout-'))
  upstream = await startUpstream((_req, res) => writeLargeAnswer(res, 64 * MB))
  gateway = await startTestGateway({
    server: { send_timeout: '1s' },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'big', path: '/big', upstream: 'api', public: true }],
  })
}, 30_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

it('an answer cut at send_timeout keeps its status, and its record says the client stopped reading', async () => {
  const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET /big HTTP/1.1\r\nHost: gw\r\nX-Request-Id: stalled-reader\r\n\r\n')
  socket.pause() // reads nothing: the kernel's buffers fill, then nothing moves for send_timeout
  socket.on('error', () => {})
  // The record is written once the gateway has cut the answer (a paused client sees no end).
  const record = await waitForAuditRecord(join(dir, 'audit.db'), 'stalled-reader')
  socket.destroy()
  expect(record.status).toBe(200)
  expect(record.detail).toBe('The client stopped reading: the gateway cut the answer at server.send_timeout.')
  expect(record.bytes_out).toBeLessThan(64 * MB)
}, 30_000)
