// Found by an adversarial probe (helper): answers were streamed with backpressure alone, so a client that took none of
// its answer (an HTTP/2 stream with a flow-control window of 0) paused the upstream and held the upstream connection
// until send_timeout; two such connections held an upstream's whole pool. Now up to server.response_buffer_bytes of
// an answer wait in the gateway's memory: an answer that fits frees its upstream connection at once.
import { readFileSync } from 'node:fs'
import { connect, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2'
import { Agent, request } from 'undici'
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest'
import { heldResponseBytes } from '../../src/upstream/response-buffer.ts'
import { createPki, type TestPki } from '../helpers/certs.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { closeWithin, startH2Gateway } from '../helpers/h2-gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ANSWER_BYTES = 192 * 1024 // past what Node's HTTP/2 stream takes itself (its 64 KB highWaterMark), inside the 256 KB default

let pki: TestPki
let ca: Buffer
let upstream: TestUpstream
let agent: Agent
const gateways: TestGateway[] = []

beforeAll(async () => {
  pki = createPki()
  ca = readFileSync(pki.ca.cert)
  agent = new Agent({ connect: { ca, servername: 'localhost' } })
  upstream = await startUpstream((req, res) => {
    if (req.url === '/answer') {
      const body = Buffer.alloc(ANSWER_BYTES)
      for (let i = 0; i < body.length; i++) body[i] = i % 251
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length })
      res.end(body)
      return
    }
    res.end('hello')
  })
})
afterEach(async () => {
  for (const gateway of gateways.splice(0)) await closeWithin(gateway)
})
afterAll(async () => {
  await agent?.close()
  await upstream?.close()
  pki?.close()
})

/** A gateway whose upstream pool is one connection, so a held connection stops every other request. */
async function gatewayWith(server: Record<string, unknown>): Promise<TestGateway> {
  const gateway = await startH2Gateway(pki, upstream.url, { send_timeout: '30s', ...server }, { upstreams: [{ name: 'api', url: upstream.url, max_connections: 1 }] })
  gateways.push(gateway)
  return gateway
}

/** Asks for /answer over HTTP/2 with a stream window of 0: the gateway can send none of it. */
async function stalledDownload(gateway: TestGateway): Promise<{ client: ClientHttp2Session; stream: ClientHttp2Stream; headers: Promise<Record<string, unknown>> }> {
  const client = connect(gateway.url, { ca, servername: 'localhost', settings: { initialWindowSize: 0 } })
  const stream = client.request({ ':path': '/answer' }, { endStream: true })
  const headers = new Promise<Record<string, unknown>>((resolve) => stream.once('response', resolve))
  await waitFor(() => gateway.state.inFlight === 1 || heldResponseBytes() > 0, 'the download to start')
  return { client, stream, headers }
}

describe('an answer its client does not take yet', () => {
  it('waits in the gateway, freeing the upstream connection for the next request; the client gets every byte once it reads', async () => {
    const gateway = await gatewayWith({})
    const { client, stream, headers } = await stalledDownload(gateway)
    try {
      // The only upstream connection is free again: another client is answered now, not after send_timeout.
      const next = await request(`${gateway.url}/hello`, { dispatcher: agent, signal: AbortSignal.timeout(5_000) })
      expect({ status: next.statusCode, body: await next.body.text() }).toEqual({ status: 200, body: 'hello' })
      expect(heldResponseBytes()).toBeGreaterThan(0)
      // The client opens its window: the whole answer arrives, in order.
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      const ended = new Promise<void>((resolve) => stream.once('end', resolve))
      client.settings({ initialWindowSize: 65_535 })
      expect((await headers)[':status']).toBe(200)
      await ended
      const body = Buffer.concat(chunks)
      expect(body.length).toBe(ANSWER_BYTES)
      expect(body.every((byte, i) => byte === i % 251)).toBe(true)
      await waitFor(() => heldResponseBytes() === 0, 'the held bytes to be given back')
    } finally {
      client.destroy()
    }
  }, 30_000)

  it('held no further than server.response_buffer_total_bytes: past it the upstream waits for the client, as before', async () => {
    const gateway = await gatewayWith({ response_buffer_total_bytes: 0 })
    const { client } = await stalledDownload(gateway)
    try {
      const next = await request(`${gateway.url}/hello`, { dispatcher: agent, signal: AbortSignal.timeout(1_500) }).then(() => 'answered', (err: Error) => err.name)
      expect(next).toBe('TimeoutError')
      expect(heldResponseBytes()).toBe(0)
    } finally {
      client.destroy()
    }
    // Once the stalled client is gone, its upstream connection is free again.
    const after = await request(`${gateway.url}/hello`, { dispatcher: agent, signal: AbortSignal.timeout(5_000) })
    expect(after.statusCode).toBe(200)
    await after.body.text()
  }, 30_000)

  it('a client that leaves without reading gives its held bytes back', async () => {
    const gateway = await gatewayWith({})
    const { client } = await stalledDownload(gateway)
    await waitFor(() => heldResponseBytes() > 0, 'bytes held for the client')
    client.destroy()
    await waitFor(() => heldResponseBytes() === 0, 'the held bytes to be given back')
  }, 30_000)
})
