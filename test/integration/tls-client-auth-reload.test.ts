// Written by an adversarial probe (helper), which this held up against: client_auth changed by a config reload takes effect for new handshakes
// (optional -> require refuses certificate-less handshakes; none -> optional asks for one).
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect as h2connect } from 'node:http2'
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type Issued, type TestPki } from '../helpers/certs.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway
let loader: Issued

function config(clientAuth: 'none' | 'optional' | 'require'): Record<string, unknown> {
  return {
    server: { tls: { cert: pki.server.cert, key: pki.server.key, ...(clientAuth === 'none' ? {} : { client_ca: pki.ca.cert }), client_auth: clientAuth }, http2: true },
    issuers: clientAuth === 'none' ? [] : [{ name: 'mesh', type: 'x509' }],
    ...(clientAuth === 'none' ? {} : allowAnyCaller(['mesh'])),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [
      { id: 'open', path: '/open', upstream: 'api', public: true },
      ...(clientAuth === 'none' ? [] : [{ id: 'data', path: '/data/*', upstream: 'api', accept: ['client_cert'] }]),
    ],
  }
}

beforeAll(async () => {
  pki = createPki()
  loader = pki.ca.issue('loader', { usage: 'client', san: ['URI:spiffe://prod/loader'] })
  upstream = await startUpstream()
  gateway = await startTestGateway(config('optional'))
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
})

/** A fresh connection (no session reuse): the status line of one request, or "handshake refused". */
async function fresh(path: string, cert: Issued | null, extra: ConnectionOptions = {}): Promise<string> {
  const { port } = new URL(gateway.url)
  const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), ca: readFileSync(pki.ca.cert), servername: 'localhost', ALPNProtocols: ['http/1.1'], ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}), ...extra })
  try {
    await once(socket, 'secureConnect')
    socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
    let text = ''
    for await (const chunk of socket) text += (chunk as Buffer).toString('latin1')
    return text === '' ? 'handshake refused' : text.split('\r\n')[0] as string
  } catch {
    return 'handshake refused'
  } finally {
    socket.destroy()
  }
}

async function freshH2(path: string, cert: Issued | null): Promise<string> {
  const session = h2connect(gateway.url, { ca: readFileSync(pki.ca.cert), servername: 'localhost', ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}) })
  session.on('error', () => {})
  try {
    const stream = session.request({ ':path': path })
    stream.on('error', () => {})
    const [headers] = (await once(stream, 'response')) as [Record<string, string>]
    for await (const _ of stream) { /* drain */ }
    return String(headers[':status'])
  } catch {
    return 'handshake refused'
  } finally {
    session.close()
  }
}

describe('client_auth changed by a reload', () => {
  it('optional -> require -> optional, over HTTP/1.1 and h2', async () => {
    expect(await fresh('/open', null)).toBe('HTTP/1.1 200 OK')
    await gateway.writeConfig(config('require'))
    expect((await gateway.reload()).ok).toBe(true)
    expect({
      h1NoCert: await fresh('/open', null),
      h2NoCert: await freshH2('/open', null),
      h1Cert: await fresh('/data/x', loader),
      h2Cert: await freshH2('/data/x', loader),
    }).toEqual({ h1NoCert: 'handshake refused', h2NoCert: 'handshake refused', h1Cert: 'HTTP/1.1 200 OK', h2Cert: '200' })
    await gateway.writeConfig(config('optional'))
    expect((await gateway.reload()).ok).toBe(true)
    expect(await fresh('/open', null)).toBe('HTTP/1.1 200 OK')
    expect(await freshH2('/open', null)).toBe('200')
  })

  it('none -> optional asks new handshakes for a certificate', async () => {
    await gateway.writeConfig(config('none'))
    expect(await gateway.reload()).toMatchObject({ ok: true })
    expect(await fresh('/open', loader)).toBe('HTTP/1.1 200 OK')
    await gateway.writeConfig(config('optional'))
    expect((await gateway.reload()).ok).toBe(true)
    expect({ h1: await fresh('/data/x', loader), h2: await freshH2('/data/x', loader) }).toEqual({ h1: 'HTTP/1.1 200 OK', h2: '200' })
  })
})
