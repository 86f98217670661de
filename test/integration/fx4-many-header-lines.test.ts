// Found by a probe: an HTTP/1.1 request with 1,000 or more header lines was refused 431 "The request
// headers exceed max_header_bytes" at about 8 KB, whatever max_header_bytes said (65536 here): Node
// counts header lines too (maxHeadersCount, 2000 raw entries, so 1,000 lines), and the gateway's
// size limit never came into it. nginx has no count limit but a size one: max_header_bytes is now
// the only limit (Node counts a line's name and value, at least 1 byte), so no count binds first.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, publicCatchAll, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'

let upstream: Server
let gateway: TestGateway
let port: number

beforeAll(async () => {
  // An upstream that takes as many lines as the gateway sends (the test helper's has Node's limits).
  upstream = createServer({ maxHeaderSize: 1 << 20 }, (req, res) => {
    res.writeHead(200, { 'x-lines': String(req.rawHeaders.length / 2) })
    res.end()
  })
  upstream.maxHeadersCount = 0
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  gateway = await startTestGateway({ server: { max_header_bytes: 65_536 }, ...publicCatchAll(upstreamUrl) })
  port = Number(new URL(gateway.url).port)
})
afterAll(async () => {
  await gateway?.close()
  upstream?.closeAllConnections()
  upstream?.close()
})

const requestWith = (lines: number, value = 'v') => {
  let head = 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n'
  for (let i = 0; i < lines; i++) head += `x-h${i}: ${value}\r\n`
  return rawRequest(port, `${head}\r\n`)
}

describe('an HTTP/1.1 request with many header lines', () => {
  it('is served while its headers fit max_header_bytes', async () => {
    const res = await requestWith(3_000) // about 24 KB of names and values, well under the limit
    expect(res.status).toBe(200)
    expect(Number(res.headers['x-lines'])).toBeGreaterThanOrEqual(3_000)
  })

  it('is refused 431 once they exceed it', async () => {
    const res = await requestWith(3_000, 'v'.repeat(30)) // about 110 KB
    expect(res.status).toBe(431)
    expect(res.headers['content-type']).toContain('problem+json')
  })

  it('is refused 431 for many short lines past the limit too', async () => {
    const res = await requestWith(12_000) // about 100 KB of names and values
    expect(res.status).toBe(431)
  })
})
