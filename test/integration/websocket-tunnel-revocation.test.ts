// A WebSocket tunnel outlives its handshake, the only request authenticated and authorized: an API
// key revoked, a session revoked, or a reload that took the caller's access away left its open
// tunnels open for as long as the client liked. Each now closes them (close frame 1008, then the TCP
// close), and the record says why; tunnels the change does not concern stay open.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { newApiKey, sessionId } from '../../src/identity/index.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { signInConfig, startSignInGateway, startSignInProvider, UNUSED_ORIGIN } from '../helpers/sign-in.ts'
import { waitFor } from '../helpers/wait.ts'
import { CLOSE_1008, echoes, echoWebSocket, HANDSHAKE_FIELDS, openRawTunnel, type RawTunnel } from '../helpers/websocket.ts'

const ADMIN_TOKEN = 'tunnel-revocation-admin-token-0123456789'

let wsServer: Server
let gw: TestGateway
let idp: TestIdentityProvider
let db: string
let config: (dir: string) => Record<string, unknown>

const chat = { name: 'chat', statements: [{ sid: 'Chat', effect: 'allow', actions: ['GET'], routes: ['live'] }] }

beforeAll(async () => {
  idp = await startSignInProvider(UNUSED_ORIGIN)
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req, socket: Socket) => {
    echoWebSocket(req, socket)
  })
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
  config = (dir: string) => ({
    admin: { token: ADMIN_TOKEN },
    ...signInConfig(idp),
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') } },
    roles: [
      { name: 'people', assumed_by: [{ issuer: 'sso', claims: { groups: 'staff' } }], policies: ['chat'] },
      { name: 'bots', assumed_by: [{ issuer: 'api-keys', subject: 'bot-*' }], policies: ['chat'] },
    ],
    policies: [chat],
    upstreams: [{ name: 'ws', url: `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}` }],
    routes: [{ id: 'live', path: '/live/*', upstream: 'ws', accept: ['session', 'api_key', 'bearer'], websocket: true }],
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
  })
  gw = await startSignInGateway((dir) => {
    db = join(dir, 'audit.db')
    return config(dir)
  })
}, 60_000)

afterAll(async () => {
  await gw?.close()
  wsServer?.close()
  await idp?.stop()
})

/** An API key of `principal` in the gateway's store: the whole key, and its id. */
async function apiKey(principal: string): Promise<{ key: string; id: string }> {
  const created = newApiKey()
  await gw.state.runtime.apiKeys!.store.insert({
    id: created.id, principal, description: null, hash: created.hash, createdAt: Date.now(), expiresAt: null, revokedAt: null, lastUsedAt: null,
  })
  return { key: created.key, id: created.id }
}

/** A signed-in person's session as the callback writes it: its cookie and its id. */
async function session(subject: string): Promise<{ cookie: string; id: string }> {
  const value = randomBytes(32).toString('base64url')
  const now = Date.now()
  const id = sessionId(value)
  await gw.state.runtime.signIn!.store.put({
    id, issuer: 'sso', subject, claims: { sub: subject, groups: ['staff'] },
    createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000, refreshAt: null, sealed: null, audience: 'gateway',
  })
  return { cookie: `bouncer_session=${value}`, id }
}

/** Opens a tunnel through the gateway with the credential's header lines. */
async function openTunnel(credential: string, requestId: string): Promise<RawTunnel> {
  const port = Number(new URL(gw.url).port)
  const tunnel = await openRawTunnel(port, `GET /live/feed HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\nX-Request-Id: ${requestId}\r\n${credential}${HANDSHAKE_FIELDS}\r\n`)
  expect(tunnel.head).toMatch(/^HTTP\/1\.1 101/)
  await echoes(tunnel, 'opened')
  return tunnel
}

async function admin(method: 'DELETE' | 'POST', path: string): Promise<number> {
  const res = await request(`${gw.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  await res.body.dump()
  return res.statusCode
}

/** The tunnel was closed by the gateway with 1008, and its record says why. */
async function closedFor(tunnel: RawTunnel, requestId: string): Promise<string | null> {
  await waitFor(() => tunnel.closed(), `the gateway closing ${requestId}`, 5000)
  expect(tunnel.received().subarray(-CLOSE_1008.length)).toEqual(CLOSE_1008)
  const record = await waitForAuditRecord(db, requestId)
  expect(record.status).toBe(101)
  return record.detail
}

/** The tunnel is still open, and its record (once the client closes it) has no word of the gateway's. */
async function stillOpen(tunnel: RawTunnel, requestId: string): Promise<void> {
  await echoes(tunnel, 'still here')
  expect(tunnel.closed()).toBe(false)
  tunnel.socket.destroy()
  expect((await waitForAuditRecord(db, requestId)).detail).toBeNull()
}

describe('an open WebSocket tunnel', () => {
  it('closes when its API key is revoked (admin API); another key\'s stays open', async () => {
    const revoked = await apiKey('bot-revoked')
    const kept = await apiKey('bot-kept')
    const doomed = await openTunnel(`X-API-Key: ${revoked.key}\r\n`, 'ws-key-revoked')
    const other = await openTunnel(`X-API-Key: ${kept.key}\r\n`, 'ws-key-kept')

    expect(await admin('DELETE', `/api/keys/${revoked.id}`)).toBe(200)
    const detail = await closedFor(doomed, 'ws-key-revoked')
    expect(detail).toMatch(new RegExp(`^The caller's API key ${revoked.id} was revoked at \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z: the gateway closed the tunnel\\.$`))
    await stillOpen(other, 'ws-key-kept')
  })

  it('closes when its API key is revoked by the command line, another process that writes the store', async () => {
    const revoked = await apiKey('bot-cli')
    const doomed = await openTunnel(`X-API-Key: ${revoked.key}\r\n`, 'ws-key-cli')
    const file = join(gw.dir, 'cli.yaml')
    await writeFile(file, stringify({ api_keys: config(gw.dir).api_keys }))
    const cli = await runCliInProcess(['keys', 'revoke', '--config', file, revoked.id])
    expect(cli.code, cli.stderr).toBe(0)
    expect(await closedFor(doomed, 'ws-key-cli')).toMatch(new RegExp(`^The caller's API key ${revoked.id} was revoked at `))
  })

  it('closes when its session is revoked (admin API); another session\'s stays open', async () => {
    const revoked = await session('ann')
    const kept = await session('bob')
    const doomed = await openTunnel(`Cookie: ${revoked.cookie}\r\n`, 'ws-session-revoked')
    const other = await openTunnel(`Cookie: ${kept.cookie}\r\n`, 'ws-session-kept')

    expect(await admin('DELETE', `/api/sessions/${revoked.id}`)).toBe(200)
    expect(await closedFor(doomed, 'ws-session-revoked')).toBe('The caller\'s session has ended (signed out, revoked or expired): the gateway closed the tunnel.')
    await stillOpen(other, 'ws-session-kept')
  })

  it('closes after a reload that denies its caller, or removes its route; a caller still allowed keeps its tunnel', async () => {
    const bot = await apiKey('bot-denied')
    const person = await session('cat')
    const denied = await openTunnel(`X-API-Key: ${bot.key}\r\n`, 'ws-reload-denied')
    const allowed = await openTunnel(`Cookie: ${person.cookie}\r\n`, 'ws-reload-allowed')

    const noBots = { sid: 'NoBots', effect: 'deny', actions: ['*'], routes: ['live'], conditions: { claims: { iss: 'api-keys' } } }
    await gw.writeConfig({ ...config(gw.dir), policies: [{ ...chat, statements: [...chat.statements, noBots] }] })
    expect(await admin('POST', '/api/reload')).toBe(200)
    expect(await closedFor(denied, 'ws-reload-denied')).toBe('After a config reload, the caller is no longer allowed (Statement "NoBots" of policy "chat" denies GET on route "live"): the gateway closed the tunnel.')
    await echoes(allowed, 'after the first reload')

    const gone = await openTunnel(`Cookie: ${person.cookie}\r\n`, 'ws-reload-gone')
    await gw.writeConfig({ ...config(gw.dir), routes: [{ id: 'live', path: '/elsewhere/*', upstream: 'ws', accept: ['session'], websocket: true }] })
    expect(await admin('POST', '/api/reload')).toBe(200)
    expect(await closedFor(gone, 'ws-reload-gone')).toBe('After a config reload, no route takes GET /live/feed (route_not_found): the gateway closed the tunnel.')
    expect(await closedFor(allowed, 'ws-reload-allowed')).toBe('After a config reload, no route takes GET /live/feed (route_not_found): the gateway closed the tunnel.')
    await gw.writeConfig(config(gw.dir))
    expect(await admin('POST', '/api/reload')).toBe(200)
  })
})
