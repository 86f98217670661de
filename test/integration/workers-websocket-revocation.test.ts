// With server.workers, a connection stays with the worker that accepted it: a tunnel is held by one
// worker, a revocation is made through the admin API (or the CLI) and a reload is applied by every
// worker. Tunnels spread over the workers all close when their API key is revoked, or when a reload
// denies their caller (websocket-tunnel-revocation.test.ts has the single-process cases and the records).
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { type ServeProcess } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { waitFor } from '../helpers/wait.ts'
import { CLOSE_1008, echoes, echoWebSocket, HANDSHAKE_FIELDS, openRawTunnel, type RawTunnel } from '../helpers/websocket.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

const ADMIN = 'workers-websocket-admin-token-0123'
/** Tunnels, each on a connection of its own, which the kernel spreads over both workers: all on one would be one time in two thousand. */
const TUNNELS = 12

let dir: string
let wsServer: Server
let gateway: ServeProcess
let file: string
let written: Record<string, unknown>

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-websocket-'))
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req, socket: Socket) => {
    echoWebSocket(req, socket)
  })
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
  ;({ gateway, file } = await serveWithWorkers(dir, (port) => {
    written = {
      server: { listen: `127.0.0.1:${port}`, workers: 2 },
      admin: { listen: '127.0.0.1:0', token: ADMIN },
      audit: { sinks: [], spill_dir: join(dir, 'spill') },
      api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') } },
      roles: [{ name: 'bots', assumed_by: [{ issuer: 'api-keys' }], policies: ['chat'] }],
      policies: [{ name: 'chat', statements: [{ sid: 'Chat', effect: 'allow', actions: ['GET'], routes: ['live'] }] }],
      upstreams: [{ name: 'ws', url: `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}` }],
      routes: [{ id: 'live', path: '/live/*', upstream: 'ws', accept: ['api_key'], websocket: true }],
    }
    return written
  }))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  wsServer?.close()
  await rm(dir, { recursive: true, force: true })
})

async function createKey(principal: string): Promise<string> {
  const created = await runCliInProcess(['keys', 'create', '--config', file, '--principal', principal])
  expect(created.code, created.stderr).toBe(0)
  return created.stdout.trim()
}

async function openTunnel(key: string): Promise<RawTunnel> {
  const tunnel = await openRawTunnel(Number(new URL(gateway.url).port), `GET /live/feed HTTP/1.1\r\nHost: gw\r\nX-API-Key: ${key}\r\n${HANDSHAKE_FIELDS}\r\n`)
  expect(tunnel.head).toMatch(/^HTTP\/1\.1 101/)
  await echoes(tunnel, 'hello')
  return tunnel
}

async function allClosed(tunnels: RawTunnel[], why: string): Promise<void> {
  await waitFor(() => tunnels.every((t) => t.closed()), `every tunnel closed (${why})`, 10_000)
  for (const tunnel of tunnels) expect(tunnel.received()).toEqual(Buffer.concat([Buffer.from('hello'), CLOSE_1008]))
}

it('every worker closes its tunnels of a key revoked through the admin API, and of a caller a reload denies', async () => {
  const revokedKey = await createKey('bot-1')
  const revoked = await Promise.all(Array.from({ length: TUNNELS }, () => openTunnel(revokedKey)))
  const deleted = await request(`${gateway.adminUrl}/api/keys/${revokedKey.slice(3, 19)}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN}` } })
  expect(deleted.statusCode).toBe(200)
  await deleted.body.dump()
  await allClosed(revoked, 'the key revoked')

  const deniedKey = await createKey('bot-2')
  const denied = await Promise.all(Array.from({ length: TUNNELS }, () => openTunnel(deniedKey)))
  await writeFile(file, stringify({ ...written, policies: [{ name: 'chat', statements: [{ sid: 'Chat', effect: 'allow', actions: ['GET'], routes: ['elsewhere'] }] }] }))
  const reloaded = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } })
  expect(reloaded.statusCode, await reloaded.body.text()).toBe(200)
  await allClosed(denied, 'the reload')
}, 90_000)
