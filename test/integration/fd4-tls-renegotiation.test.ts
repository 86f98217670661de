// A TLS 1.2 client that asks to renegotiate an HTTP/1.1 connection (an old Java or .NET client
// asking for a client certificate late, or a CPU-sink attack, CVE-2011-1473). The gateway refuses
// renegotiation; found by a probe: the refusal reached node:http as a parser error, so the client
// was sent "400 Malformed HTTP request: TLS session renegotiation disabled for this socket." in the
// middle of its handshake, and a request that never was got an audit record and a count. Now the
// connection is closed, as HTTP/2's is, and the refusal logged at debug level.
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/index.ts'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway
let db: string

beforeAll(async () => {
  pki = createPki()
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  gateway = await startTestGateway((dir) => {
    db = join(dir, 'audit.db')
    return {
      server: { tls: { cert: pki.server.cert, key: pki.server.key } },
      audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
      telemetry: { log_level: 'debug' },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
    }
  })
})
afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
})

it('closes an HTTP/1.1 connection whose client asks to renegotiate, answering nothing in HTTP and recording no request', async () => {
  const { port } = new URL(gateway.url)
  const socket = connect({ host: '127.0.0.1', port: Number(port), ca: readFileSync(pki.ca.cert), servername: 'localhost', maxVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'] })
  socket.on('error', () => {})
  await once(socket, 'secureConnect')
  let received = ''
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')))
  const closed = once(socket, 'close')
  socket.renegotiate({}, () => {})
  await closed
  expect(received).toBe('')
  await waitFor(() => gateway.logs.some((line) => line.includes('TLS renegotiation refused')), 'the refusal logged')

  // The next request is recorded; nothing before it.
  const res = await request(`${gateway.url}/after`, { dispatcher: new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost' } }), headers: { 'x-request-id': 'fd4-after-renegotiation' } })
  expect(res.statusCode).toBe(200)
  await res.body.dump()
  await waitFor(async () => (await searchAudit({ type: 'sqlite', path: db }, { limit: 10 }).catch(() => [])).some((r) => r.request_id === 'fd4-after-renegotiation'), 'the request after audited')
  const records = await searchAudit({ type: 'sqlite', path: db }, { limit: 10 })
  expect(records.map((r) => [r.request_id, r.status])).toEqual([['fd4-after-renegotiation', 200]])
})
