// request_timeout (README "Limits and timeouts": 408 if the body is not complete within it, a
// trickling body) on HTTP/2, where node:http2 has no request timeout of its own and the pipeline
// arms one only while it waits for the first 64 KiB (pipeline.ts awaitBody). A body whose first
// 64 KiB arrive at once and whose rest trickles is forwarded, and then holds an upstream connection.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:http2'
import { connect as tlsConnect } from 'node:tls'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { closeWithin, startH2Gateway } from '../helpers/h2-gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  pki = createPki()
  upstream = await startUpstream()
  gateway = await startH2Gateway(pki, upstream.url, { request_timeout: '2s', shutdown_timeout: '1s' })
})
afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
})

describe('HTTP/2 request_timeout', () => {
  it.each([['with content-length', true], ['without', false]])('a body that trickles after its first 64 KiB gets 408 at request_timeout (%s)', async (_name, declared) => {
    const client = connect(gateway.url, { ca: readFileSync(pki.ca.cert), servername: 'localhost' })
    client.on('error', () => {})
    const stream = client.request({ ':method': 'POST', ':path': '/upload', ...(declared ? { 'content-length': '1000000' } : {}) }, { endStream: false })
    stream.on('error', () => {})
    let status = 0
    stream.on('response', (headers) => (status = Number(headers[':status'])))
    stream.write(Buffer.alloc(70_000, 0x61)) // past the 64 KiB window: forwarded now
    const started = Date.now()
    const trickle = setInterval(() => stream.write(Buffer.alloc(1, 0x61)), 250)
    // request_timeout is 2 s from the request's start; its check runs every second or less.
    const answered = await waitFor(() => status !== 0 || stream.closed, 'an answer or a reset', 5_000).then(() => true, () => false)
    clearInterval(trickle)
    const elapsed = Date.now() - started
    const upstreamInFlight = gateway.state.inFlight
    client.destroy()
    expect({ answered, status, upstreamInFlight }).toEqual({ answered: true, status: 408, upstreamInFlight: 0 })
    expect(elapsed).toBeLessThan(4_000)
  }, 15_000)

  it('the reference: HTTP/1.1 gets its 408 at request_timeout', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: Number(new URL(gateway.url).port), ca: readFileSync(pki.ca.cert), servername: 'localhost', ALPNProtocols: ['http/1.1'] })
    await once(socket, 'secureConnect')
    let text = ''
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
    socket.on('error', () => {})
    socket.write('POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n')
    socket.write(Buffer.alloc(70_000, 0x61))
    const trickle = setInterval(() => socket.write(Buffer.alloc(1, 0x61)), 250)
    const answered = await waitFor(() => text.startsWith('HTTP/1.1'), 'an answer', 5_000).then(() => true, () => false)
    clearInterval(trickle)
    socket.destroy()
    expect({ answered, status: text.slice(9, 12) }).toEqual({ answered: true, status: '408' })
  }, 15_000)
})

// The readers that take a body whole (a function's event, the token endpoint's form, an MCP
// message) waited for the stream's end with no deadline of their own: a client that sent what it
// declared without END_STREAM held the stream for ever, on the token endpoint before any credential
// was checked (found by a probe). Now each answers 408 at request_timeout.
describe('HTTP/2 request_timeout, bodies read whole', () => {
  let whole: TestGateway
  let dir: string

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bouncer-h2-whole-body-'))
    writeFileSync(join(dir, 'echo.mjs'), 'export async function handler(event) { return { statusCode: 200, body: event.body ?? "" } }\n')
    whole = await startTestGateway({
      server: { tls: { cert: pki.server.cert, key: pki.server.key }, http2: true, hosts: ['localhost'], request_timeout: '2s', shutdown_timeout: '1s' },
      token_exchange: { issuer: 'https://gw.test', require_actor: false, actors: [{ role: 'agent', delegated_roles: ['reader'] }] },
      issuers: [{ name: 'corp', issuer: 'https://idp.test', audiences: ['a'], jwks_uri: 'http://127.0.0.1:9/jwks' }],
      roles: [{ name: 'reader', assumed_by: [{ issuer: 'corp', subject: 'alice' }], policies: [] }, { name: 'agent', assumed_by: [{ issuer: 'corp', subject: 'agent-1' }], policies: [] }],
      functions: [{ name: 'echo', module: join(dir, 'echo.mjs') }],
      routes: [{ id: 'fn', path: '/fn', function: 'echo', public: true }],
    })
  })
  afterAll(async () => {
    await closeWithin(whole)
    rmSync(dir, { recursive: true, force: true })
  })

  it.each([
    ['a function route', '/fn', 'text/plain'],
    ['the token endpoint (before any credential)', '/oauth2/token', 'application/x-www-form-urlencoded'],
  ])('%s: the declared bytes sent, the stream never ended: 408 at request_timeout', async (_name, path, type) => {
    const client = connect(whole.url, { ca: readFileSync(pki.ca.cert), servername: 'localhost' })
    client.on('error', () => {})
    const stream = client.request({ ':method': 'POST', ':path': path, 'content-type': type, 'content-length': '10' }, { endStream: false })
    stream.on('error', () => {})
    let status = 0
    stream.on('response', (headers) => (status = Number(headers[':status'])))
    stream.write('grant_type') // all 10 declared bytes, and no END_STREAM
    const started = Date.now()
    const answered = await waitFor(() => status !== 0 || stream.closed, 'an answer or a reset', 6_000).then(() => true, () => false)
    const elapsed = Date.now() - started
    client.destroy()
    expect({ answered, status }).toEqual({ answered: true, status: 408 })
    expect(elapsed).toBeLessThan(4_000)
  }, 15_000)
})
