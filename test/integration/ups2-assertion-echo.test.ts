// An upstream that echoes the X-Bouncer-Assertion the gateway sent it back in its answer's headers
// (a debug header, a WWW-Authenticate quoting the assertion it refused). The assertion is a bearer
// credential the gateway signs for that upstream: handed to its client, it could be sent to the
// upstream directly, around the gateway's policy and limits, for minutes (SPEC: the client never
// sets an X-Bouncer-* header). Such a header is withheld, as an echoed injected credential is, in
// an answer and in a WebSocket handshake's, switched or refused.
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { allowAnyCaller, startTestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider } from '../helpers/identity-provider.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { waitFor } from '../helpers/wait.ts'
import { HANDSHAKE_FIELDS, openRawTunnel } from '../helpers/websocket.ts'

const closeLater = closeAfterEach()

/** An upstream that puts the assertion it got in X-Debug-Assertion and in its WWW-Authenticate; 401 on paths ending in /refused. */
async function setUp(): Promise<{ url: string; port: number; token: string; seen: string[] }> {
  const seen: string[] = []
  const echoed = (req: IncomingMessage): string => {
    const assertion = String(req.headers['x-bouncer-assertion'])
    seen.push(assertion)
    return `X-Debug-Assertion: ${assertion}\r\nWWW-Authenticate: Bearer error="invalid_token", error_description="assertion ${assertion} not accepted"\r\nX-Ok: fine\r\n`
  }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const head = echoed(req)
    res.socket?.write(`HTTP/1.1 ${req.url?.endsWith('/refused') ? '401 Unauthorized' : '200 OK'}\r\n${head}Content-Type: text/plain\r\nContent-Length: 8\r\n\r\nanswered`)
    res.socket?.end()
  })
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    socket.on('error', () => {})
    const head = echoed(req)
    if (req.url?.endsWith('/refused')) return void socket.end(`HTTP/1.1 401 Unauthorized\r\n${head}Content-Length: 0\r\nConnection: close\r\n\r\n`)
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${head}\r\n`)
  })
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => sockets.add(socket))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  closeLater(async () => {
    for (const socket of sockets) socket.destroy()
    server.close()
  })
  const idp = await startIdentityProvider()
  closeLater(() => idp.stop())
  const gw = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'api', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, identity_assertion: true }],
    routes: [
      { id: 'ws', path: '/ws/*', upstream: 'api', websocket: true },
      { id: 'api', path: '/*', upstream: 'api' },
    ],
  })
  closeLater(() => gw.close())
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys')
  return { url: gw.url, port: Number(new URL(gw.url).port), token: await idp.token('looker-reports'), seen }
}

describe('an upstream that echoes the identity assertion in its answer headers', () => {
  it('the headers holding it are withheld from the client; the others pass', async () => {
    const { url, token, seen } = await setUp()
    for (const path of ['/ok', '/refused']) {
      const res = await request(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } })
      expect(res.statusCode).toBe(path === '/ok' ? 200 : 401)
      expect(await res.body.text()).toBe('answered')
      expect(res.headers['x-ok']).toBe('fine')
      expect(res.headers['x-debug-assertion'], path).toBeUndefined()
      // Its challenge keeps its scheme alone (ups2-www-authenticate).
      expect(res.headers['www-authenticate'], path).toBe('Bearer')
      const assertion = seen.at(-1) as string
      expect(assertion.split('.')).toHaveLength(3)
      expect(JSON.stringify(res.headers)).not.toContain(assertion)
    }
  })

  it('nor does a WebSocket handshake\'s answer, switched or refused', async () => {
    const { port, token, seen } = await setUp()
    for (const [path, status] of [['/ws/ok', 101], ['/ws/refused', 401]] as const) {
      const tunnel = await openRawTunnel(port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n${HANDSHAKE_FIELDS}\r\n`)
      closeLater(() => void tunnel.socket.destroy())
      expect(tunnel.status, path).toBe(status)
      expect(tunnel.head.toLowerCase()).toContain('x-ok: fine')
      const assertion = seen.at(-1) as string
      expect(assertion.split('.')).toHaveLength(3)
      expect(tunnel.head, path).not.toContain(assertion)
      expect(tunnel.head.toLowerCase(), path).not.toContain('x-debug-assertion')
    }
  })
})
