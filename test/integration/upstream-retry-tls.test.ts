// Written by an adversarial probe (helper), and held: a POST that reached a TLS target, which then broke the connection at the TLS layer (a fatal alert,
// a corrupted record): the gateway must not send it again to another target.
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

let pki: TestPki
const cleanup: Array<() => Promise<void> | void> = []

interface TlsTarget { url: string; posts: string[] }

/** An https target; `breakAfterRequest`: once it has read the whole request, it writes bytes that are no TLS record onto the raw socket. */
async function tlsTarget(breakAfterRequest: boolean): Promise<TlsTarget> {
  const posts: string[] = []
  const key = readFileSync(pki.server.key)
  const cert = readFileSync(pki.server.cert)
  const http = createHttpServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    posts.push(`${req.method} ${Buffer.concat(chunks).toString()}`)
    if (breakAfterRequest) {
      const raw = (req.socket as TLSSocket & { _raw?: Socket })._raw as Socket
      raw.write(Buffer.from('\x15\x03\x03\x00\x02\x02\x50garbage-not-a-tls-record'))
      setTimeout(() => raw.destroy(), 50)
      return
    }
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('ok')
  })
  const server: Server = createNetServer((raw) => {
    const tls = new TLSSocket(raw, { isServer: true, key, cert }) as TLSSocket & { _raw?: Socket }
    tls._raw = raw
    tls.on('error', () => {})
    raw.on('error', () => {})
    http.emit('connection', tls)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanup.push(() => { server.close(); http.close() })
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, posts }
}

beforeAll(() => {
  pki = createPki()
})
afterAll(async () => {
  for (const f of cleanup.reverse()) await f()
  pki.close()
})

describe('retries after a TLS failure that followed the request', () => {
  it('a POST received by a TLS target that then breaks at the TLS layer is not sent to another target', async () => {
    const broken = await tlsTarget(true)
    const healthy = await tlsTarget(false)
    const gw: TestGateway = await startTestGateway({
      upstreams: [{ name: 'api', targets: [broken.url, healthy.url], balance: 'round_robin', tls: { ca: pki.ca.cert }, retries: { attempts: 2, on: ['connect_failure'], budget: '100%' } }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    cleanup.push(() => gw.close())
    const res = await request(`${gw.url}/payments`, { method: 'POST', body: '{"amount":100}', headers: { 'content-type': 'application/json' } })
    const text = await res.body.text()
    console.log(res.statusCode, text, broken.posts, healthy.posts)
    // The broken target received (and may have acted on) the POST; it must not be repeated elsewhere.
    expect(broken.posts).toEqual(['POST {"amount":100}'])
    expect(healthy.posts).toEqual([])
    expect(res.statusCode).toBeGreaterThanOrEqual(500)
  })
})
