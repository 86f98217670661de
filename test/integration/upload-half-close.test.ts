// Found by a probe: a client that sent part of a declared body and half-closed (FIN) got a raw 400
// "Malformed HTTP request" under a new request id, and the audit held two records for one request:
// the request's own and a second with path "-". Node's parser reports the early end as a client
// error while the request is already in the pipeline, which answers and records it itself.
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
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

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-half-close-'))
  upstream = await startUpstream((req, res) => {
    req.on('error', () => {})
    req.resume()
    req.on('end', () => res.end('ok'))
  })
  gateway = await startTestGateway({
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'upload', path: '/upload', upstream: 'api', public: true }],
  })
}, 30_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

async function halfCloseUpload(requestId: string, sent: number): Promise<string> {
  const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1')
  await once(socket, 'connect')
  let answer = ''
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')))
  socket.on('error', () => {})
  socket.write(`POST /upload HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ${requestId}\r\nContent-Length: 1000000\r\n\r\n`)
  socket.end(Buffer.alloc(sent, 0x61)) // part of the body, then FIN
  await once(socket, 'close')
  return answer
}

// Past the window the request was forwarded, and the client left before the answer: 499. Inside it
// nothing was forwarded, and the record is the documented 408 "did not arrive before the connection
// closed" (aborted-uploads-audit.test.ts).
it.each([['past the 64 KiB forwarding window', 200_000, 499], ['inside it', 30_000, 408]])('a body cut short by a FIN %s: no raw 400 under another id, one record', async (_name, sent, status) => {
  const requestId = `half-close-${sent}`
  const answer = await halfCloseUpload(requestId, sent)
  // Whatever the client reads is the request's own answer, never a second one under a new id.
  if (answer !== '') expect(answer.toLowerCase()).toContain(`x-request-id: ${requestId}`)
  const record = await waitForAuditRecord(join(dir, 'audit.db'), requestId)
  expect(record.status).toBe(status)
  const records = await searchAudit({ type: 'sqlite', path: join(dir, 'audit.db') }, { limit: 500 })
  expect(records.filter((r) => r.path === '-')).toEqual([])
})
