// Found by a WebSocket probe: a JWT that expired while its tunnel was open left the tunnel open, and
// nothing checked it again. A tunnel is closed at its credential's expiry (close frame 1008, then the
// TCP close), and its record says why. That instant is the one verification stops accepting the
// token, `exp` plus its issuer's clock_tolerance: closed at `exp`, a token still accepted lost its
// tunnel for the tolerance (30 s by default), and one within it got a tunnel closed at once.
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { waitFor } from '../helpers/wait.ts'
import { CLOSE_1008, echoes, echoWebSocket, HANDSHAKE_FIELDS, openRawTunnel, type RawTunnel } from '../helpers/websocket.ts'

/** The issuer's clock_tolerance, in seconds. */
const TOLERANCE = 2

let wsServer: Server
let gw: TestGateway
let idp: TestIdentityProvider
let db: string

beforeAll(async () => {
  idp = await startIdentityProvider()
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req, socket: Socket) => {
    echoWebSocket(req, socket)
  })
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
  gw = await startTestGateway((dir) => {
    db = join(dir, 'audit.db')
    return {
      issuers: [{ name: 'corp', issuer: idp.issuer, audiences: ['api://bouncer'], clock_tolerance: `${TOLERANCE}s` }],
      roles: [{ name: 'chatter', assumed_by: [{ issuer: 'corp', subject: 'chat-user' }], policies: ['chat'] }],
      policies: [{ name: 'chat', statements: [{ sid: 'Chat', effect: 'allow', actions: ['GET'], routes: ['ws'] }] }],
      upstreams: [{ name: 'ws', url: `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}` }],
      routes: [{ id: 'ws', path: '/ws/*', upstream: 'ws', websocket: true }],
      audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    }
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})
afterAll(async () => {
  await gw?.close()
  wsServer?.close()
  await idp?.stop()
})

/** Opens a tunnel through the gateway with the token. */
async function openTunnel(token: string, requestId: string): Promise<RawTunnel> {
  const tunnel = await openRawTunnel(Number(new URL(gw.url).port), `GET /ws/chat HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ${requestId}\r\nAuthorization: Bearer ${token}\r\n${HANDSHAKE_FIELDS}\r\n`)
  expect(tunnel.head).toMatch(/^HTTP\/1\.1 101/)
  return tunnel
}

describe('a WebSocket tunnel and its credential', () => {
  it('is closed when the JWT that opened it is no longer accepted (exp + clock_tolerance): close frame 1008, TCP close, and the record says why', async () => {
    const exp = Math.floor(Date.now() / 1000) + 1
    const short = await openTunnel(await idp.mint({ sub: 'chat-user', exp }), 'ws-expiring')
    const long = await openTunnel(await idp.mint({ sub: 'chat-user', exp: exp + 600 }), 'ws-lasting')
    await echoes(short, 'before expiry')

    await waitFor(() => short.closedAt() !== null, 'the tunnel closed at its token\'s expiry', 8000)
    const closedAt = short.closedAt() as number
    expect(closedAt).toBeGreaterThanOrEqual((exp + TOLERANCE) * 1000)
    expect(closedAt).toBeLessThan((exp + TOLERANCE) * 1000 + 1000)
    expect(short.received().subarray(-CLOSE_1008.length)).toEqual(CLOSE_1008)
    const record = await waitForAuditRecord(db, 'ws-expiring')
    expect({ status: record.status, detail: record.detail }).toEqual({
      status: 101,
      detail: `The caller's credential expired at ${new Date(exp * 1000).toISOString()} (clock tolerance ${TOLERANCE}s): the gateway closed the tunnel.`,
    })

    // A token far from its expiry keeps its tunnel.
    await echoes(long, 'after the other expired')
    expect(long.socket.destroyed).toBe(false)
    long.socket.destroy()
    const lasting = await waitForAuditRecord(db, 'ws-lasting')
    expect({ status: lasting.status, detail: lasting.detail }).toEqual({ status: 101, detail: null })
  })

  it('a token already past its exp, accepted within clock_tolerance, keeps its tunnel until the tolerance runs out', async () => {
    const exp = Math.floor(Date.now() / 1000) - 1 // within the tolerance: accepted
    const late = await openTunnel(await idp.mint({ sub: 'chat-user', exp }), 'ws-late')
    await echoes(late, 'past exp, within the tolerance')
    await waitFor(() => late.closedAt() !== null, 'the tunnel closed once the tolerance ran out', 8000)
    expect(late.closedAt() as number).toBeGreaterThanOrEqual((exp + TOLERANCE) * 1000)
    expect(late.received().subarray(-CLOSE_1008.length)).toEqual(CLOSE_1008)
    expect((await waitForAuditRecord(db, 'ws-late')).detail).toBe(`The caller's credential expired at ${new Date(exp * 1000).toISOString()} (clock tolerance ${TOLERANCE}s): the gateway closed the tunnel.`)
  })
})
