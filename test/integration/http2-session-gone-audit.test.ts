// An HTTP/2 client whose whole session goes (its TCP connection closed) while its request waits for
// the upstream: the request's audit record must still be written. An HTTP/2 session's socket is a
// proxy that throws on any property read once the session is gone, and the pipeline's last look at
// the connection (is it an MCP tool call?) read one after the answer: an unhandled rejection, and
// the record never written (CI after the agents probe's merge: 51 such rejections).
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { connect } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { createPki, type TestPki } from '../helpers/certs.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { startH2Gateway } from '../helpers/h2-gateway.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let dir: string
let upstream: Server
let gateway: TestGateway
const arrived: Array<() => void> = []

beforeAll(async () => {
  pki = createPki()
  dir = mkdtempSync(join(tmpdir(), 'bouncer-h2-session-gone-'))
  // Answers only when the test says so: the request is in flight when its session goes.
  upstream = createServer((_req, res) => arrived.push(() => res.end('late')))
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  gateway = await startH2Gateway(pki, url, {}, { audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' } })
})

afterAll(async () => {
  for (const answer of arrived) answer()
  await gateway?.close()
  upstream?.closeAllConnections()
  upstream?.close()
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

it('a request whose HTTP/2 session closed while it waited is audited', async () => {
  const session = connect(gateway.url, { ca: readFileSync(pki.ca.cert), servername: 'localhost' })
  session.on('error', () => {})
  const stream = session.request({ ':path': '/slow', 'x-request-id': 'h2-session-gone' })
  stream.on('error', () => {})
  stream.end()
  await waitFor(() => arrived.length === 1, 'the request to reach the upstream')
  session.socket.destroy() // the whole connection, not one stream
  await waitFor(() => gateway.state.inFlight === 0, 'the gateway to finish the request')
  let record: Awaited<ReturnType<typeof searchAudit>>[number] | undefined
  await waitFor(async () => {
    record = (await searchAudit({ type: 'sqlite', path: join(dir, 'audit.db') }, { limit: 10 }).catch(() => [])).find((r) => r.request_id === 'h2-session-gone')
    return record !== undefined
  }, 'the audit record of the request', 10_000)
  expect(record).toMatchObject({ method: 'GET', path: '/slow', status: 499 })
})
