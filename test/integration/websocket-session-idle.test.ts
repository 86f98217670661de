// An open tunnel's session is read again every second (gateway/tunnels.ts): one that went idle
// (sign_in.session.idle, no request using it) is ended, as a handshake with it would be refused
// now. The stores disagreed: memory and SQLite delete an idle session at their minute's sweep,
// and the tunnel closed then, up to a minute late; Redis keeps it to its absolute end, and the
// tunnel stayed open, while README said neither store's idle closed it. Now every store's tunnel
// closes within a second of its session's idle end, the record saying why.
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { signInConfig, startSignInProvider, UNUSED_ORIGIN } from '../helpers/sign-in.ts'
import { waitFor } from '../helpers/wait.ts'
import { acceptWebSocket, CLOSE_1008, echoes, HANDSHAKE_FIELDS, openRawTunnel } from '../helpers/websocket.ts'

const IDLE_MS = 1500

let wsServer: Server
let gw: TestGateway
let idp: TestIdentityProvider
let db: string

beforeAll(async () => {
  idp = await startSignInProvider(UNUSED_ORIGIN)
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req, socket: Socket) => {
    acceptWebSocket(req, socket)
    socket.on('data', (chunk: Buffer) => socket.write(chunk)) // raw echo
    socket.on('error', () => {})
    socket.on('end', () => socket.end())
  })
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
  gw = await startTestGateway((dir) => {
    db = join(dir, 'audit.db')
    return {
      ...signInConfig(idp, { session: { ttl: '1h', idle: `${IDLE_MS}ms`, store: 'memory' } }),
      roles: [{ name: 'people', assumed_by: [{ issuer: 'sso', claims: { groups: 'staff' } }], policies: ['chat'] }],
      policies: [{ name: 'chat', statements: [{ sid: 'Chat', effect: 'allow', actions: ['GET'], routes: ['live'] }] }],
      upstreams: [{ name: 'ws', url: `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}` }],
      routes: [{ id: 'live', path: '/live/*', upstream: 'ws', accept: ['session'], websocket: true }],
      audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    }
  })
}, 60_000)

afterAll(async () => {
  await gw?.close()
  wsServer?.close()
  await idp?.stop()
})

it('an open tunnel closes within a second of its session going idle, whatever crosses it', async () => {
  const value = randomBytes(32).toString('base64url')
  const now = Date.now()
  await gw.state.runtime.signIn!.store.put({
    id: sessionId(value), issuer: 'sso', subject: 'ann', claims: { sub: 'ann', groups: ['staff'] },
    createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000, refreshAt: null, sealed: null, audience: 'gateway',
  })
  const port = Number(new URL(gw.url).port)
  const tunnel = await openRawTunnel(port, `GET /live/feed HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\nX-Request-Id: ws-session-idle\r\nCookie: bouncer_session=${value}\r\n${HANDSHAKE_FIELDS}\r\n`)
  expect(tunnel.head).toMatch(/^HTTP\/1\.1 101/)
  const opened = Date.now()
  await echoes(tunnel, 'hello')

  // The session's idle end is IDLE_MS after the handshake (its last use); the sweep reads it within a second.
  await waitFor(() => tunnel.closed(), 'the gateway closing the tunnel of an idle session', 5000)
  expect(Date.now() - opened).toBeGreaterThanOrEqual(IDLE_MS - 100)
  expect(tunnel.received().subarray(-CLOSE_1008.length)).toEqual(CLOSE_1008)
  const record = await waitForAuditRecord(db, 'ws-session-idle')
  expect(record.status).toBe(101)
  expect(record.detail).toBe(`The caller's session has expired (it was idle for more than ${IDLE_MS / 1000}s): the gateway closed the tunnel.`)
})
