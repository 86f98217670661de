// A WebSocket tunnel opened with a client certificate outlived a reload that took the certificate's
// CA out of its x509 issuer (a CA whose key leaked): a new handshake with the certificate got 401,
// while the open tunnel stayed (the WebSocket probe's left item). A reload that changes how client
// certificates are checked now checks each open tunnel's certificate again.
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { connect, type TLSSocket } from 'node:tls'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { clientCertConfig, clientCertTls, createPki, type Issued, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { deferred, waitFor } from '../helpers/wait.ts'
import { CLOSE_1008, echoWebSocket, HANDSHAKE_FIELDS } from '../helpers/websocket.ts'

let pki: TestPki
let wsServer: Server
let gateway: TestGateway
let loader: Issued
let upstreamUrl: string
/** The upstream answers an upgrade to /live/held-N once held[N] resolves; asked[N] once it has the request. */
const held = [deferred(), deferred()]
const asked = [false, false]

const configWith = (issuerCa: string) => clientCertConfig(upstreamUrl, {
  issuerCa,
  server: { tls: clientCertTls(pki, `${pki.dir}/both-cas.pem`) },
  routes: [{ id: 'live', path: '/live/*', upstream: 'api', accept: ['client_cert'], websocket: true }],
})

beforeAll(async () => {
  pki = createPki()
  loader = pki.ca.issue('loader', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/loader'] })
  writeFileSync(`${pki.dir}/both-cas.pem`, readFileSync(pki.ca.cert, 'utf8') + readFileSync(pki.otherCa.cert, 'utf8'))
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req, socket: Socket) => {
    const n = Number(/\/held-(\d)$/.exec(req.url ?? '')?.[1] ?? -1)
    if (n < 0) return echoWebSocket(req, socket)
    asked[n] = true
    void held[n]?.promise.then(() => echoWebSocket(req, socket))
  })
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
  upstreamUrl = `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}`
  gateway = await startTestGateway(configWith(pki.ca.cert))
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  wsServer?.close()
  pki?.close()
})

/** A tunnel over TLS presenting the loader's certificate: the socket, and every byte received after the answer's head. */
async function openTunnel(path = '/live/feed', beforeAnswer: () => Promise<void> = async () => {}): Promise<{ socket: TLSSocket; status: string; after(): Buffer; closed(): boolean }> {
  const port = Number(new URL(gateway.url).port)
  const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(pki.ca.cert), servername: 'localhost', cert: readFileSync(loader.cert), key: readFileSync(loader.key), ALPNProtocols: ['http/1.1'] })
  await once(socket, 'secureConnect')
  let bytes = Buffer.alloc(0)
  let closed = false
  socket.on('data', (c: Buffer) => (bytes = Buffer.concat([bytes, c])))
  socket.on('error', () => {})
  socket.on('close', () => (closed = true))
  socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost:${port}\r\n${HANDSHAKE_FIELDS}\r\n`)
  await beforeAnswer()
  await waitFor(() => bytes.includes('\r\n\r\n') || closed, 'the handshake answer')
  const end = bytes.indexOf('\r\n\r\n') + 4
  return { socket, status: bytes.subarray(0, end).toString('latin1').split('\r\n')[0] ?? '', after: () => bytes.subarray(end), closed: () => closed }
}

it('closes a certificate\'s tunnel when a reload takes its CA out of the issuer, and keeps it when the CA stays', async () => {
  const tunnel = await openTunnel()
  expect(tunnel.status).toBe('HTTP/1.1 101 Switching Protocols')
  // A reload that changes nothing of how certificates are checked keeps it.
  await gateway.writeConfig({ ...configWith(pki.ca.cert), upstreams: [{ name: 'api', url: upstreamUrl, max_connections: 64 }] })
  expect((await gateway.reload()).ok).toBe(true)
  tunnel.socket.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69])) // a masked "hi"
  await waitFor(() => tunnel.after().includes('hi'), 'the echo through the kept tunnel')
  // The issuer now vouches for the other CA only: the loader's certificate is no longer one of its.
  await gateway.writeConfig(configWith(pki.otherCa.cert))
  expect((await gateway.reload()).ok).toBe(true)
  await waitFor(() => tunnel.closed(), 'the gateway closing the tunnel', 5_000)
  expect(tunnel.after().subarray(-CLOSE_1008.length)).toEqual(CLOSE_1008)
  expect((await openTunnel()).status).toBe('HTTP/1.1 401 Unauthorized')
}, 60_000)

// Its handshake authenticated before the reload, its 101 after: the tunnel took the new config's
// certificate trust as the one it was checked under, so the reload's check of it was skipped.
it('checks again a tunnel whose handshake straddled a reload: kept when its CA stays, closed when the reload took it out', async () => {
  await gateway.writeConfig(configWith(pki.ca.cert))
  expect((await gateway.reload()).ok).toBe(true)
  // Straddling a reload that keeps its CA, it is checked again and stays.
  const kept = await openTunnel('/live/held-0', async () => {
    await waitFor(() => asked[0] === true, 'the upgrade at the upstream')
    await gateway.writeConfig({ ...configWith(pki.ca.cert), upstreams: [{ name: 'api', url: upstreamUrl, max_connections: 32 }] })
    expect((await gateway.reload()).ok).toBe(true)
    held[0]?.resolve()
  })
  expect(kept.status).toBe('HTTP/1.1 101 Switching Protocols')
  kept.socket.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69])) // a masked "hi"
  await waitFor(() => kept.after().includes('hi'), 'the echo through the kept tunnel')
  expect(kept.closed()).toBe(false)
  kept.socket.destroy()
  // Straddling the one that takes the CA out, it is closed.
  const tunnel = await openTunnel('/live/held-1', async () => {
    await waitFor(() => asked[1] === true, 'the upgrade at the upstream')
    await gateway.writeConfig(configWith(pki.otherCa.cert))
    expect((await gateway.reload()).ok).toBe(true)
    held[1]?.resolve()
  })
  expect(tunnel.status).toBe('HTTP/1.1 101 Switching Protocols')
  await waitFor(() => tunnel.closed(), 'the gateway closing the tunnel', 5_000)
  expect(tunnel.after().subarray(-CLOSE_1008.length)).toEqual(CLOSE_1008)
}, 60_000)
