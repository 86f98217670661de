// Found by a probe: an HTTP/1.1 body that missed request_timeout got Node's raw 408 under a new
// request id, recorded apart (method and path "-"), while the request's own record said 408 "did not
// arrive before the connection closed" under an id the client never saw, or 499 once more than the
// 64 KiB window had been forwarded. And with max_body_bytes under 64 KiB a chunked body over the
// limit waited for request_timeout (408) instead of its 413. The pipeline now keeps the body's
// deadline on HTTP/1.1 too, and the window ends one byte past the limit.
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let dir: string
let upstream: TestUpstream
let gateway: TestGateway
const audit = () => join(dir, 'audit.db')

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-request-timeout-'))
  upstream = await startUpstream((req, res) => {
    req.on('error', () => {})
    req.resume()
    req.on('end', () => res.end('ok'))
  })
  gateway = await startTestGateway({
    server: { request_timeout: '2s', max_body_bytes: 100_000 },
    audit: { sinks: [{ type: 'sqlite', path: audit() }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'upload', path: '/upload', upstream: 'api', public: true }, { id: 'small', path: '/small', upstream: 'api', public: true }],
  })
}, 30_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

/** Sends a head and `first` bytes of body, then trickles a byte every 300 ms until the answer; the answer's text. */
async function trickle(head: string, first: Buffer): Promise<string> {
  const socket: Socket = connect(Number(new URL(gateway.url).port), '127.0.0.1')
  await once(socket, 'connect')
  socket.on('error', () => {})
  let answer = ''
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')))
  socket.write(head)
  socket.write(first)
  const timer = setInterval(() => socket.writable && socket.write('a'), 300)
  await once(socket, 'close')
  clearInterval(timer)
  return answer
}

async function onlyRecordOf(requestId: string) {
  const record = await waitForAuditRecord(audit(), requestId)
  const all = await searchAudit({ type: 'sqlite', path: audit() }, { limit: 500 })
  expect(all.filter((r) => r.path === '-')).toEqual([]) // no second record of the same request
  return record
}

it.each([['inside the forwarding window', 1_000], ['after 70 KB were forwarded', 70_000]])('a body trickling %s past request_timeout: 408 under its own id, one record', async (_name, first) => {
  const requestId = `trickle-${first}`
  const answer = await trickle(`POST /upload HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ${requestId}\r\nContent-Length: 90000\r\n\r\n`, Buffer.alloc(first, 0x61))
  expect(answer.slice(0, 12)).toBe('HTTP/1.1 408')
  expect(answer.toLowerCase()).toContain(`x-request-id: ${requestId}`)
  const record = await onlyRecordOf(requestId)
  expect({ status: record.status, code: record.code, decision: record.decision, detail: record.detail }).toEqual({
    status: 408, code: 'request_timeout', decision: 'deny', detail: 'The request body did not arrive within request_timeout.',
  })
}, 20_000)

it('a chunked body over a max_body_bytes under 64 KiB: 413 as it crosses the limit, not 408 at request_timeout', async () => {
  const gw = await startTestGateway({
    server: { request_timeout: '10s', max_body_bytes: 1_000 },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'upload', path: '/upload', upstream: 'api', public: true }],
  })
  try {
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
    await once(socket, 'connect')
    socket.on('error', () => {})
    let answer = ''
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')))
    const started = Date.now()
    socket.write('POST /upload HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n')
    socket.write(`5dc\r\n${'a'.repeat(1_500)}\r\n`) // 1,500 bytes, and nothing more for now
    await once(socket, 'close')
    expect(answer.slice(0, 12)).toBe('HTTP/1.1 413')
    expect(Date.now() - started).toBeLessThan(5_000) // was request_timeout's 10 s
  } finally {
    await gw.close()
  }
}, 20_000)
