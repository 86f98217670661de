// A WebSocket tunnel opened with a session is closed when the session ends, also after a reload
// renamed sign_in.cookie.name: found by a probe, the recheck read the cookie under the new name
// only, found none, took that as "not revoked", and a revoked session's tunnel stayed open for good.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { signInConfig, startSignInGateway, startSignInProvider, UNUSED_ORIGIN } from '../helpers/sign-in.ts'
import { waitFor } from '../helpers/wait.ts'
import { CLOSE_1008, echoes, echoWebSocket, HANDSHAKE_FIELDS, openRawTunnel } from '../helpers/websocket.ts'

const ADMIN_TOKEN = 'tunnel-renamed-cookie-admin-token-0123456789'
let wsServer: Server
let gw: TestGateway
let idp: TestIdentityProvider

const config = (cookie: string) => ({
  admin: { token: ADMIN_TOKEN },
  ...signInConfig(idp, { cookie: { name: cookie } }),
  roles: [{ name: 'people', assumed_by: [{ issuer: 'sso' }], policies: ['chat'] }],
  policies: [{ name: 'chat', statements: [{ sid: 'Chat', effect: 'allow', actions: ['GET'], routes: ['live'] }] }],
  upstreams: [{ name: 'ws', url: `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}` }],
  routes: [{ id: 'live', path: '/live/*', upstream: 'ws', accept: ['session'], websocket: true }],
})

beforeAll(async () => {
  idp = await startSignInProvider(UNUSED_ORIGIN)
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req, socket: Socket) => echoWebSocket(req, socket))
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
  gw = await startSignInGateway(config('bouncer_session'))
}, 60_000)

afterAll(async () => {
  await gw?.close()
  wsServer?.close()
  await idp?.stop()
})

it('the tunnel of a session sent under the cookie name a reload renamed closes when the session is revoked', async () => {
  const value = randomBytes(32).toString('base64url')
  const now = Date.now()
  const id = sessionId(value)
  await gw.state.runtime.signIn!.store.put({
    id, issuer: 'sso', subject: 'alice', claims: { sub: 'alice' }, createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000, refreshAt: null, sealed: null, audience: 'gateway',
  })
  const port = Number(new URL(gw.url).port)
  const tunnel = await openRawTunnel(port, `GET /live/feed HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\nCookie: bouncer_session=${value}\r\n${HANDSHAKE_FIELDS}\r\n`)
  expect(tunnel.head).toMatch(/^HTTP\/1\.1 101/)
  await echoes(tunnel, 'opened')

  await gw.writeConfig(config('renamed_session'))
  expect((await gw.reload()).ok).toBe(true)
  await echoes(tunnel, 'still open after the reload')

  const res = await request(`${gw.adminUrl}/api/sessions/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  await res.body.dump()
  expect(res.statusCode).toBe(200)
  await waitFor(() => tunnel.closed(), 'the gateway closing the revoked session\'s tunnel', 5_000)
  expect(tunnel.received().subarray(-CLOSE_1008.length)).toEqual(CLOSE_1008)
})
