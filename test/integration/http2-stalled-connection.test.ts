// An HTTP/2 client that stops reading its TCP connection altogether (not one stream's window, which
// http2.test.ts covers): README says a response with bytes waiting for a client that takes none of
// them is cut after between send_timeout and twice it, and on HTTP/2 its stream is reset.
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type TestPki } from '../helpers/certs.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { closeWithin, startH2Gateway } from '../helpers/h2-gateway.ts'
import { FLAG, frame, FRAME, headerBlock, rawH2, requestHeaders } from '../helpers/h2-frames.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway
let upstreamClosed = false

beforeAll(async () => {
  pki = createPki()
  upstream = await startUpstream(async (_req, res) => {
    res.on('close', () => (upstreamClosed = true))
    const chunk = Buffer.alloc(65_536, 0x61)
    for (let i = 0; i < 512 && !res.destroyed; i++) {
      if (!res.write(chunk)) await new Promise<void>((resolve) => { const go = () => { res.off('drain', go); res.off('close', go); resolve() }; res.on('drain', go); res.on('close', go) })
    }
    res.end()
  })
  gateway = await startH2Gateway(pki, upstream.url, { send_timeout: '1s', keep_alive_timeout: '1s', shutdown_timeout: '1s' })
})
afterAll(async () => {
  await closeWithin(gateway) // bounded: see the last expectation
  await upstream?.close()
  pki?.close()
})

describe('an HTTP/2 client that reads nothing at all', () => {
  it('is cut at send_timeout; at the latest once it leaves, its request ends and the shutdown is not held', async () => {
    const raw = await rawH2(gateway.url, readFileSync(pki.ca.cert), { read: false })
    // Open the windows wide (as any downloader does), ask for a large answer, then read nothing.
    const settings = Buffer.alloc(6)
    settings.writeUInt16BE(0x4, 0) // SETTINGS_INITIAL_WINDOW_SIZE
    settings.writeUInt32BE(0x7fffffff, 2)
    const increment = Buffer.alloc(4)
    increment.writeUInt32BE(0x7fffffff - 65_535)
    raw.send(frame(FRAME.SETTINGS, 0, 0, settings), frame(FRAME.WINDOW_UPDATE, 0, 0, increment))
    raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(requestHeaders('/big'))))
    await waitFor(() => gateway.state.inFlight === 1, 'the request in flight')
    await waitFor(() => gateway.logs.some((line) => line.includes('send_timeout: resetting a stream')), 'send_timeout to fire', 5_000)
    // send_timeout: 1 s, so the cut is due within 2 s of the stall.
    const cutAtSendTimeout = await waitFor(() => gateway.state.inFlight === 0, 'the stalled request to end', 3_000).then(() => true, () => false)
    raw.socket.destroy() // the client goes away altogether
    const endedOnceGone = await waitFor(() => gateway.state.inFlight === 0, 'the request to end once its client left', 3_000).then(() => true, () => false)
    const started = Date.now()
    const shutdownDone = await Promise.race([gateway.shutdown().then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2_500))])
    expect({ cutAtSendTimeout, endedOnceGone, upstreamClosed, shutdownDone, inFlight: gateway.state.inFlight })
      .toEqual({ cutAtSendTimeout: true, endedOnceGone: true, upstreamClosed: true, shutdownDone: true, inFlight: 0 })
    expect(Date.now() - started).toBeLessThan(2_500)
  }, 30_000)
})
