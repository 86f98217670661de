// Found by an adversarial probe (helper): an HTTP/2 :path with raw bytes >= 0x80 (nghttp2 lets them
// through; HTTP/1.1's parser refuses them with 400) reached the upstream encoded twice: /café sent
// as UTF-8 bytes became /caf%C3%83%C2%A9. It is now refused with 400 bad_path, as on HTTP/1.1.
import { readFileSync } from 'node:fs'
import { once } from 'node:events'
import { connect, type ClientHttp2Session } from 'node:http2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { startH2Gateway } from '../helpers/h2-gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  pki = createPki()
  upstream = await startUpstream()
  gateway = await startH2Gateway(pki, upstream.url)
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
})

async function get(path: string): Promise<{ status: number; reset?: number }> {
  const client: ClientHttp2Session = connect(gateway.url, { ca: readFileSync(pki.ca.cert), servername: 'localhost' })
  client.on('error', () => {})
  await once(client, 'connect')
  try {
    return await new Promise((resolve) => {
      const stream = client.request({ ':path': path, ':method': 'GET' })
      let status = 0
      stream.on('response', (h) => (status = Number(h[':status'])))
      stream.on('data', () => {})
      stream.on('end', () => resolve({ status }))
      stream.on('close', () => resolve({ status, reset: stream.rstCode || undefined }))
      stream.on('error', () => {})
    })
  } finally {
    client.close()
  }
}

describe('HTTP/2 :path with raw UTF-8 bytes', () => {
  it('"/café" sent as raw UTF-8 bytes is refused (400), and nothing reaches the upstream; percent-encoded it passes', async () => {
    const before = upstream.received.length
    // 'café' in UTF-8 is 63 61 66 C3 A9; node:http2 writes a header string byte per char (latin1).
    expect((await get('/caf\u00c3\u00a9')).status).toBe(400)
    expect(upstream.received.slice(before)).toEqual([])
    expect((await get('/caf%C3%A9')).status).toBe(200)
    expect(upstream.received.slice(before).map((r) => r.url)).toEqual(['/caf%C3%A9'])
  })
})
