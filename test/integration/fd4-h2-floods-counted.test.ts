// Found by a probe: an HTTP/2 session ended for a flood (rapid reset, CVE-2023-44487: HEADERS then
// RST_STREAM in a loop; a WINDOW_UPDATE past 2^31-1) was logged at debug level only and counted
// nowhere, so an operator running at info level never saw the attack. Each such session is now
// counted in bouncer_http2_sessions_ended_total by nghttp2's reason. (The floods themselves were
// bounded already: the raw rapid reset reaches no upstream and ends the session.)
import { readFileSync } from 'node:fs'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPki, type TestPki } from '../helpers/certs.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { errorCode, FLAG, frame, FRAME, headerBlock, rawH2, requestHeaders } from '../helpers/h2-frames.ts'
import { closeWithin, startH2Gateway } from '../helpers/h2-gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway
let upstreamRequests = 0

beforeAll(async () => {
  pki = createPki()
  upstream = await startUpstream((_req, res) => {
    upstreamRequests++
    res.end('ok')
  })
  gateway = await startH2Gateway(pki, upstream.url)
})
afterAll(async () => {
  await closeWithin(gateway)
  await upstream?.close()
  pki?.close()
})

async function endedSessions(reason: string): Promise<number> {
  const text = await (await request(`${gateway.adminUrl}/metrics`)).body.text()
  return Number(new RegExp(`^bouncer_http2_sessions_ended_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
}

it('ends a raw rapid-reset flood before any request reaches the upstream, and counts the session', async () => {
  const raw = await rawH2(gateway.url, readFileSync(pki.ca.cert))
  const cancel = Buffer.alloc(4)
  cancel.writeUInt32BE(0x8) // CANCEL
  let opened = 0
  for (let round = 0; round < 200 && !raw.socket.destroyed; round++) {
    const burst: Buffer[] = []
    for (let i = 0; i < 100; i++) {
      const id = 1 + 2 * opened++
      burst.push(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, headerBlock(requestHeaders(`/reset/${id}`))), frame(FRAME.RST_STREAM, 0, id, cancel))
    }
    raw.send(...burst)
    await new Promise((resolve) => setImmediate(resolve))
  }
  await raw.closed
  expect(raw.frames.some((f) => f.type === FRAME.GOAWAY)).toBe(true)
  expect(opened).toBeLessThan(20_000)
  expect(upstreamRequests).toBe(0)
  expect(await endedSessions('Protocol error')).toBe(1)
})

it('counts a session ended for a WINDOW_UPDATE past the largest window', async () => {
  const raw = await rawH2(gateway.url, readFileSync(pki.ca.cert))
  const increment = Buffer.alloc(4)
  increment.writeUInt32BE(0x7fffffff)
  raw.send(frame(FRAME.WINDOW_UPDATE, 0, 0, increment), frame(FRAME.WINDOW_UPDATE, 0, 0, increment))
  await raw.closed
  const goaway = raw.frames.find((f) => f.type === FRAME.GOAWAY)
  expect(goaway && errorCode(goaway)).toBe(0x3) // FLOW_CONTROL_ERROR
  expect(await endedSessions('Flow control error')).toBe(1)
})
