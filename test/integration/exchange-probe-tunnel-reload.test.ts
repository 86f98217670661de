// Found by an adversarial probe (helper): a WebSocket tunnel opened on a route with a token the
// gateway exchanged outlived a reload that stopped the gateway taking such tokens (token_exchange
// removed, or its audiences no longer listing the token's). The reload decided the tunnel by its
// route and policies alone, and an exchanged token's roles are the ones it carries, granted at the
// exchange: no trust rule is left to change. A new handshake with the same token was refused
// (401 issuer_unknown, audience_mismatch); the tunnel stayed open for its token's whole lifetime.
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { exchanged as exchangedAt, ISSUER } from '../helpers/exchange.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { waitFor } from '../helpers/wait.ts'
import { CLOSE_1008, echoes, echoWebSocket, HANDSHAKE_FIELDS, openRawTunnel, type RawTunnel } from '../helpers/websocket.ts'

const OTHER = 'https://reports.gateway.test'

let dir: string
let idp: TestIdentityProvider
let wsServer: Server
let gw: TestGateway

function config(exchange: Record<string, unknown> | null, audiences = [AUDIENCE]): Record<string, unknown> {
  return {
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences }],
    roles: [
      { name: 'reader', assumed_by: [{ issuer: 'corp', subject: 'looker-reports' }], policies: ['live'] },
      { name: 'agent', assumed_by: [{ issuer: 'corp', subject: 'analytics-agent' }], policies: ['live'] },
    ],
    policies: [{ name: 'live', statements: [{ sid: 'Live', effect: 'allow', actions: ['GET'], routes: ['live'] }] }],
    upstreams: [{ name: 'ws', url: `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}` }],
    routes: [{ id: 'live', path: '/live/*', upstream: 'ws', websocket: true }],
    ...(exchange ? { token_exchange: exchange } : {}),
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
  }
}

const exchangeFor = (audiences: string[]) => ({ issuer: ISSUER, audiences, actors: [{ role: 'agent', delegated_roles: ['reader'] }] })

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-exchange-probe-tunnel-'))
  idp = await startIdentityProvider()
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req, socket: Socket) => echoWebSocket(req, socket))
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
  gw = await startTestGateway(config(exchangeFor([ISSUER, OTHER])))
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys', 20_000)
}, 60_000)

afterAll(async () => {
  await gw?.close()
  wsServer?.close()
  await idp?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

async function exchanged(audience: string): Promise<string> {
  return exchangedAt(gw.url, { subject: await idp.token('looker-reports'), actor: await idp.token('analytics-agent'), audience })
}

/** A handshake with the token: the tunnel when answered 101, else the status. */
async function handshake(token: string, requestId: string): Promise<RawTunnel | number> {
  const port = Number(new URL(gw.url).port)
  const tunnel = await openRawTunnel(port, `GET /live/feed HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Request-Id: ${requestId}\r\nAuthorization: Bearer ${token}\r\n${HANDSHAKE_FIELDS}\r\n`)
  if (tunnel.status !== 101) {
    tunnel.socket.destroy()
    return tunnel.status
  }
  await echoes(tunnel, 'opened')
  return tunnel
}

async function reloadTo(next: Record<string, unknown>): Promise<void> {
  await gw.writeConfig(next)
  expect((await gw.reload()).ok).toBe(true)
}

/** Closed by the gateway (1008), the record (101) saying why. */
async function closedWith(tunnel: RawTunnel, requestId: string): Promise<string | null> {
  await waitFor(() => tunnel.closed(), `the gateway closing ${requestId}`, 5_000)
  expect(tunnel.received().subarray(-CLOSE_1008.length)).toEqual(CLOSE_1008)
  const record = await waitForAuditRecord(join(dir, 'audit.db'), requestId)
  expect(record).toMatchObject({ status: 101, subject: 'looker-reports', actor: 'analytics-agent', credential: 'exchanged' })
  return record.detail
}

it('a reload that drops the token\'s audience from token_exchange.audiences closes its tunnels; another audience\'s stay open', async () => {
  await reloadTo(config(exchangeFor([ISSUER, OTHER])))
  const doomed = await handshake(await exchanged(OTHER), 'tunnel-dropped-audience') as RawTunnel
  const keptToken = await exchanged(ISSUER)
  const kept = await handshake(keptToken, 'tunnel-kept-audience') as RawTunnel
  await reloadTo(config(exchangeFor([ISSUER])))
  // Before: both stayed open.
  expect(await closedWith(doomed, 'tunnel-dropped-audience')).toBe(`After a config reload, the gateway no longer accepts its exchanged tokens for ${OTHER} (token_exchange.audiences): the gateway closed the tunnel.`)
  await echoes(kept, 'still here')
  expect(kept.closed()).toBe(false)
  kept.socket.destroy()
  expect(await handshake(keptToken, 'tunnel-kept-again')).not.toBe(401)
})

it('a reload that removes token_exchange closes the tunnels its tokens opened, as a new handshake with them is refused', async () => {
  await reloadTo(config(exchangeFor([ISSUER, OTHER])))
  const token = await exchanged(ISSUER)
  const tunnel = await handshake(token, 'tunnel-exchange-removed') as RawTunnel
  await reloadTo(config(null))
  expect(await handshake(token, 'tunnel-exchange-removed-again')).toBe(401)
  // Before: it stayed open.
  expect(await closedWith(tunnel, 'tunnel-exchange-removed')).toBe('After a config reload, the gateway no longer accepts its own exchanged tokens (token_exchange): the gateway closed the tunnel.')
})

// The same for a provider's own token (found by the probe above, reading refusedBy): a reload that
// changed the issuer's audiences refused a new handshake with it (401 audience_mismatch) and left
// its tunnel open until the token's exp.
it('a reload that no longer takes a provider\'s token (its issuer\'s audiences changed) closes its tunnels', async () => {
  await reloadTo(config(null))
  const token = await idp.token('looker-reports')
  const tunnel = await handshake(token, 'tunnel-bearer-audience') as RawTunnel
  const other = await handshake(token, 'tunnel-bearer-kept') as RawTunnel
  // Another audience added: the token is still taken, its tunnels stay.
  await reloadTo(config(null, [AUDIENCE, 'api://other']))
  await echoes(tunnel, 'after the first reload')
  await reloadTo(config(null, ['api://other']))
  expect(await handshake(token, 'tunnel-bearer-audience-again')).toBe(401)
  await waitFor(() => tunnel.closed() && other.closed(), 'the gateway closing both tunnels', 5_000)
  expect(tunnel.received().subarray(-CLOSE_1008.length)).toEqual(CLOSE_1008)
  const record = await waitForAuditRecord(join(dir, 'audit.db'), 'tunnel-bearer-audience')
  expect(record).toMatchObject({ status: 101, subject: 'looker-reports', credential: 'bearer' })
  expect(record.detail).toBe(`After a config reload, the caller's token is no longer accepted (audience_mismatch: The token is for audience ${AUDIENCE}, not api://other): the gateway closed the tunnel.`)
})
