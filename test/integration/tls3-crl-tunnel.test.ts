// A WebSocket tunnel opened with a client certificate that a reload's CRL (server.tls.client_crl,
// rewritten in place as CRLs are renewed) revokes: a new handshake with the certificate is refused,
// and the open tunnel must close too — its config (paths and all) is the same before and after, only
// the CRL's content changed. A reload whose CRLs revoke nothing new keeps it.
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, type TLSSocket } from 'node:tls'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { clientCertConfig, clientCertTls, createPki, type Issued, type TestPki } from '../helpers/certs.ts'
import { revoke, writeCrl } from '../helpers/crl.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'
import { CLOSE_1008, echoWebSocket, HANDSHAKE_FIELDS } from '../helpers/websocket.ts'

let pki: TestPki
let dir: string
let crlFile: string
let wsServer: Server
let gateway: TestGateway
let loader: Issued
let upstreamUrl: string

const config = () => clientCertConfig(upstreamUrl, {
  server: { tls: { ...clientCertTls(pki), client_crl: crlFile } },
  routes: [{ id: 'live', path: '/live/*', upstream: 'api', accept: ['client_cert'], websocket: true }],
})

beforeAll(async () => {
  pki = createPki()
  dir = mkdtempSync(join(tmpdir(), 'tls3-crl-tunnel-'))
  crlFile = join(dir, 'client-crl.pem')
  loader = pki.ca.issue('loader', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/loader'] })
  writeCrl(pki.ca, crlFile)
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req, socket: Socket) => echoWebSocket(req, socket))
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
  upstreamUrl = `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}`
  gateway = await startTestGateway(config())
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  wsServer?.close()
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

/** A tunnel over TLS presenting the loader's certificate: the socket, and every byte received after the answer's head. */
async function openTunnel(): Promise<{ socket: TLSSocket; status: string; after(): Buffer; closed(): boolean }> {
  const port = Number(new URL(gateway.url).port)
  const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(pki.ca.cert), servername: 'localhost', cert: readFileSync(loader.cert), key: readFileSync(loader.key), ALPNProtocols: ['http/1.1'] })
  await once(socket, 'secureConnect')
  let bytes = Buffer.alloc(0)
  let closed = false
  socket.on('data', (c: Buffer) => (bytes = Buffer.concat([bytes, c])))
  socket.on('error', () => {})
  socket.on('close', () => (closed = true))
  socket.write(`GET /live/feed HTTP/1.1\r\nHost: localhost:${port}\r\n${HANDSHAKE_FIELDS}\r\n`)
  await waitFor(() => bytes.includes('\r\n\r\n') || closed, 'the handshake answer')
  const end = bytes.indexOf('\r\n\r\n') + 4
  return { socket, status: bytes.subarray(0, end).toString('latin1').split('\r\n')[0] ?? '', after: () => bytes.subarray(end), closed: () => closed }
}

it("closes a certificate's tunnel when a reload's CRL revokes it, and keeps it while the CRL revokes nothing new", async () => {
  const tunnel = await openTunnel()
  expect(tunnel.status).toBe('HTTP/1.1 101 Switching Protocols')
  // A new CRL of the same CA that revokes nothing (renewed, as a CA does every few hours) keeps it.
  writeCrl(pki.ca, crlFile, { thisUpdate: new Date(Date.now() - 60_000) })
  expect((await gateway.reload()).ok).toBe(true)
  tunnel.socket.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69])) // a masked "hi"
  await waitFor(() => tunnel.after().includes('hi'), 'the echo through the kept tunnel')
  revoke(pki.ca, loader)
  writeCrl(pki.ca, crlFile)
  expect((await gateway.reload()).ok).toBe(true)
  await waitFor(() => tunnel.closed(), 'the gateway closing the tunnel', 5_000)
  expect(tunnel.after().subarray(-CLOSE_1008.length)).toEqual(CLOSE_1008)
  expect((await openTunnel()).status).toBe('HTTP/1.1 401 Unauthorized')
}, 60_000)
