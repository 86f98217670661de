// Found by an adversarial probe (frontdoor3): response_buffer_bytes was each answer's, and an
// HTTP/2 connection carries up to 100 answers at once. One connection that opened 100 downloads and
// read nothing had the gateway hold 21.6 MB of their bodies (an HTTP/1.1 connection: 256 KB), and
// three such connections took all of response_buffer_total_bytes (64 MB) from every other client,
// whose answers then held their upstream connections until their slow readers caught up. A
// connection's answers now share one response_buffer_bytes, whatever its protocol.
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { heldResponseBytes } from '../../src/upstream/response-buffer.ts'
import { createPki, type TestPki } from '../helpers/certs.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { FLAG, frame, FRAME, headerBlock, rawH2, requestHeaders } from '../helpers/h2-frames.ts'
import { closeWithin, startH2Gateway } from '../helpers/h2-gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const SHARE = 65_536
const STREAMS = 8

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway
/** Upstream answers now waiting for their connection to drain: the gateway stopped reading them. */
const blocked = new Set<ServerResponse>()

beforeAll(async () => {
  pki = createPki()
  upstream = await startUpstream(async (_req, res) => {
    // Chunked (no Content-Length), so any of it may be held; far more than loopback's socket buffers take.
    const chunk = Buffer.alloc(65_536, 0x61)
    for (let i = 0; i < 1_024 && !res.destroyed; i++) {
      if (res.write(chunk)) continue
      blocked.add(res)
      await Promise.race([once(res, 'drain'), once(res, 'close')])
      blocked.delete(res)
    }
    res.end()
  })
  gateway = await startH2Gateway(pki, upstream.url, { response_buffer_bytes: SHARE, send_timeout: '20s', request_timeout: '20s' })
})
afterAll(async () => {
  await closeWithin(gateway)
  await upstream?.close()
  pki?.close()
})

describe('an HTTP/2 connection whose client reads none of its answers', () => {
  it(`holds one response_buffer_bytes of them, not one per stream (${STREAMS} streams)`, async () => {
    const raw = await rawH2(gateway.url, readFileSync(pki.ca.cert), { read: false })
    for (let i = 0; i < STREAMS; i++) raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1 + 2 * i, headerBlock(requestHeaders(`/download/${i}`))))
    // Every upstream answer waits on its socket: the gateway has taken all it will of each.
    await waitFor(() => blocked.size === STREAMS, `all ${STREAMS} upstream answers to wait on the gateway`, 8_000)
    const held = heldResponseBytes()
    raw.socket.destroy()
    expect(held).toBeLessThanOrEqual(SHARE)
    // Given back once the client has gone.
    await waitFor(() => heldResponseBytes() === 0, 'the held bytes to be released')
  })
})
