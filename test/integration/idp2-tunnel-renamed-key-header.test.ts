// A WebSocket tunnel opened with an API key is closed when the key is revoked, also after a reload
// renamed api_keys.header: found by a probe, the recheck read the key from the handshake's headers
// under the new name, found none (missing_token, logged at debug and retried every second), and a
// revoked key's tunnel stayed open for good.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { newApiKey } from '../../src/identity/index.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'
import { CLOSE_1008, echoes, echoWebSocket, HANDSHAKE_FIELDS, openRawTunnel } from '../helpers/websocket.ts'

const ADMIN_TOKEN = 'tunnel-renamed-header-admin-token-0123456789'
let wsServer: Server
let gw: TestGateway

function config(dir: string, header: string): Record<string, unknown> {
  return {
    admin: { token: ADMIN_TOKEN },
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') }, header },
    roles: [{ name: 'bots', assumed_by: [{ issuer: 'api-keys', subject: 'bot-*' }], policies: ['chat'] }],
    policies: [{ name: 'chat', statements: [{ sid: 'Chat', effect: 'allow', actions: ['GET'], routes: ['live'] }] }],
    upstreams: [{ name: 'ws', url: `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}` }],
    routes: [{ id: 'live', path: '/live/*', upstream: 'ws', accept: ['api_key'], websocket: true }],
  }
}

beforeAll(async () => {
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req, socket: Socket) => echoWebSocket(req, socket))
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
  gw = await startTestGateway((dir) => config(dir, 'X-API-Key'))
}, 60_000)

afterAll(async () => {
  await gw?.close()
  wsServer?.close()
})

it('the tunnel of a key sent under the header a reload renamed closes when the key is revoked', async () => {
  const created = newApiKey()
  await gw.state.runtime.apiKeys!.store.insert({ id: created.id, principal: 'bot-1', description: null, hash: created.hash, createdAt: Date.now(), expiresAt: null, revokedAt: null, lastUsedAt: null })
  const port = Number(new URL(gw.url).port)
  const tunnel = await openRawTunnel(port, `GET /live/feed HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-API-Key: ${created.key}\r\n${HANDSHAKE_FIELDS}\r\n`)
  expect(tunnel.head).toMatch(/^HTTP\/1\.1 101/)
  await echoes(tunnel, 'opened')

  await gw.writeConfig(config(gw.dir, 'X-Bot-Key'))
  expect((await gw.reload()).ok).toBe(true)
  await echoes(tunnel, 'still open after the reload')

  const res = await request(`${gw.adminUrl}/api/keys/${created.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  await res.body.dump()
  expect(res.statusCode).toBe(200)
  await waitFor(() => tunnel.closed(), 'the gateway closing the revoked key\'s tunnel', 5_000)
  expect(tunnel.received().subarray(-CLOSE_1008.length)).toEqual(CLOSE_1008)
})
