// A client that gives up mid-upload over HTTP/2 (RST_STREAM, or its connection dropped, mid-DATA).
// Without content-length the body is streamed upstream chunked (README "HTTP/2"): the upstream must
// never see the part that arrived as a complete request body (a truncated POST it would act on).
import { readFileSync } from 'node:fs'
import { connect } from 'node:http2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type TestPki } from '../helpers/certs.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { startH2Gateway } from '../helpers/h2-gateway.ts'
import { FLAG, frame, FRAME, headerBlock, rawH2 } from '../helpers/h2-frames.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  pki = createPki()
  upstream = await startUpstream()
  gateway = await startH2Gateway(pki, upstream.url, { shutdown_timeout: '1s' })
})
afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
})

describe('an HTTP/2 upload cut short after it began to stream upstream', () => {
  it.each([['RST_STREAM CANCEL', 'reset'], ['the connection dropped', 'drop']])('%s: the upstream sees an aborted request, never a complete short body', async (_name, how) => {
    const path = `/orders-${how}`
    const raw = await rawH2(gateway.url, readFileSync(pki.ca.cert))
    raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, headerBlock([[':method', 'POST'], [':scheme', 'https'], [':path', path], [':authority', 'localhost']])))
    // 100,000 bytes (past the 64 KiB the gateway waits for: forwarded now) of a longer upload.
    for (let sent = 0; sent < 100_000; sent += 10_000) raw.send(frame(FRAME.DATA, 0, 1, Buffer.alloc(10_000, 0x61)))
    await waitFor(() => gateway.state.inFlight === 1, 'the upload in flight')
    await waitFor(() => gateway.state.runtime.upstreams.get('api')?.inFlight.count() === 1, 'the upload to stream upstream')
    // The upstream has the request's head before the client gives up: a request cut before the
    // upstream even parsed its head reaches it as nothing at all, which is no truncated body either.
    await waitFor(() => upstream.started.includes(path), 'the upstream to begin reading')
    if (how === 'reset') {
      const cancel = Buffer.alloc(4)
      cancel.writeUInt32BE(0x8)
      raw.send(frame(FRAME.RST_STREAM, 0, 1, cancel))
    } else {
      raw.socket.destroy()
    }
    await waitFor(() => upstream.received.some((r) => r.url === path), 'the upstream to finish reading', 5_000)
    raw.socket.destroy()
    const seen = upstream.received.find((r) => r.url === path)
    expect({ bodyBytes: seen?.bodyBytes, aborted: seen?.aborted ?? false }).toEqual({ bodyBytes: expect.any(Number), aborted: true })
  })
})

describe('HTTP/2 requests that arrive whole', () => {
  it('a GET reaches the upstream with no body, a POST with its whole body and its length', async () => {
    const client = connect(gateway.url, { ca: readFileSync(pki.ca.cert), servername: 'localhost' })
    try {
      const ask = (headers: Record<string, string>, body?: Buffer) => new Promise<number>((resolve, reject) => {
        const stream = client.request(headers, { endStream: body === undefined })
        stream.on('response', (h) => resolve(Number(h[':status'])))
        stream.on('error', reject)
        stream.resume()
        if (body !== undefined) stream.end(body)
      })
      expect(await ask({ ':path': '/whole-get' })).toBe(200)
      const get = upstream.received.find((r) => r.url === '/whole-get')
      expect(get?.headers['transfer-encoding']).toBeUndefined()
      expect(get?.bodyBytes).toBe(0)
      expect(await ask({ ':method': 'POST', ':path': '/whole-post', 'content-length': '5000' }, Buffer.alloc(5000, 0x62))).toBe(200)
      const post = upstream.received.find((r) => r.url === '/whole-post')
      expect({ length: post?.headers['content-length'], bytes: post?.bodyBytes, aborted: post?.aborted ?? false }).toEqual({ length: '5000', bytes: 5000, aborted: false })
    } finally {
      client.close()
    }
  })
})
