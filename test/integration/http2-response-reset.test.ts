// upstream-failures.test.ts checks that an HTTP/1.1 client hanging up mid-response cancels the
// upstream request. The HTTP/2 equivalent: the client resets its stream (RST_STREAM CANCEL, what a
// browser does leaving a page with an event stream open) while the upstream is still answering.
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect, constants } from 'node:http2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type TestPki } from '../helpers/certs.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { closeWithin, startH2Gateway } from '../helpers/h2-gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway
let upstreamClosed = 0

beforeAll(async () => {
  pki = createPki()
  upstream = await startUpstream((_req, res) => {
    // An answer that goes on (an event stream): 1 KB every 20 ms until the gateway hangs up.
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const timer = setInterval(() => res.write(`data: ${'x'.repeat(1024)}\n\n`), 20)
    res.on('close', () => {
      clearInterval(timer)
      upstreamClosed++
    })
  })
  gateway = await startH2Gateway(pki, upstream.url, { shutdown_timeout: '1s' })
})
afterAll(async () => {
  await closeWithin(gateway) // bounded: see the last expectation
  await upstream?.close()
  pki?.close()
})

describe('an HTTP/2 stream reset by its client while the upstream answers', () => {
  it('cancels the upstream request and leaves nothing in flight', async () => {
    const client = connect(gateway.url, { ca: readFileSync(pki.ca.cert), servername: 'localhost' })
    client.on('error', () => {})
    const stream = client.request({ ':path': '/events' })
    stream.on('error', () => {})
    await once(stream, 'data') // the answer is streaming
    stream.close(constants.NGHTTP2_CANCEL)
    await once(stream, 'close')
    const cancelled = await waitFor(() => upstreamClosed === 1 && gateway.state.inFlight === 0, 'the upstream request cancelled', 3_000).then(() => true, () => false)
    client.destroy() // the whole connection gone: still nothing ends it
    const cancelledOnceGone = await waitFor(() => upstreamClosed === 1 && gateway.state.inFlight === 0, 'the upstream request cancelled once the client left', 2_000).then(() => true, () => false)
    const shutdownDone = await Promise.race([gateway.shutdown().then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2_500))])
    expect({ cancelled, cancelledOnceGone, upstreamClosed, inFlight: gateway.state.inFlight, shutdownDone })
      .toEqual({ cancelled: true, cancelledOnceGone: true, upstreamClosed: 1, inFlight: 0, shutdownDone: true })
  }, 20_000)
})
