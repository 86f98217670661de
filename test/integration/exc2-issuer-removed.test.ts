// Found by an adversarial probe (helper): a token the gateway exchanged outlived a reload that
// removed the issuer of the user's token (its `idp`) or of the agent's (`act.iss`) — an identity
// provider no longer trusted, a compromised one taken out. The user's own token got 401
// issuer_unknown at once, while the token exchanged from it was served (200) and its WebSocket
// tunnel kept open for the rest of its lifetime: its roles are the ones it carries, so no trust
// rule was left to refuse it.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchanged, ISSUER } from '../helpers/exchange.ts'
import { explainAt, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { waitFor } from '../helpers/wait.ts'
import { CLOSE_1008, echoes, echoWebSocket, HANDSHAKE_FIELDS, openRawTunnel, type RawTunnel } from '../helpers/websocket.ts'

let corp: TestIdentityProvider
let partner: TestIdentityProvider
let wsServer: Server
let gw: TestGateway
const ADMIN_TOKEN = 'exc2-issuer-removed-admin-token'

/** The user at corp; the agent at corp, or at partner. `without` leaves one provider out (the roles' rules for it too). */
function config(without?: 'corp' | 'partner'): Record<string, unknown> {
  const providers = { corp, partner }
  const kept = (['corp', 'partner'] as const).filter((name) => name !== without)
  const rules = (subjects: Partial<Record<'corp' | 'partner', string>>) => kept.filter((name) => subjects[name]).map((name) => ({ issuer: name, subject: subjects[name] }))
  return {
    issuers: kept.map((name) => ({ name, issuer: providers[name].issuer, audiences: [AUDIENCE] })),
    roles: [
      { name: 'reader', assumed_by: rules({ corp: 'looker-reports', partner: 'looker-reports' }), policies: ['live'] },
      { name: 'agent', assumed_by: rules({ corp: 'analytics-agent', partner: 'analytics-agent' }), policies: ['live'] },
    ],
    policies: [{ name: 'live', statements: [{ sid: 'Live', effect: 'allow', actions: ['GET'], routes: ['live'] }] }],
    upstreams: [{ name: 'ws', url: `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}` }],
    routes: [{ id: 'live', path: '/live/*', upstream: 'ws', websocket: true }],
    token_exchange: { issuer: ISSUER, actors: [{ role: 'agent', delegated_roles: ['reader'] }] },
    admin: { token: ADMIN_TOKEN },
  }
}

beforeAll(async () => {
  ;[corp, partner] = await Promise.all([startIdentityProvider(), startIdentityProvider()])
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req, socket: Socket) => echoWebSocket(req, socket))
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
  gw = await startTestGateway(config())
  await waitFor(() => ['corp', 'partner'].every((name) => gw.state.runtime.issuerKeys.get(name)?.state === 'ready'), 'the issuer keys', 20_000)
}, 60_000)

afterAll(async () => {
  await gw?.close()
  wsServer?.close()
  await Promise.all([corp?.stop(), partner?.stop()])
})

async function reloadTo(next: Record<string, unknown>): Promise<void> {
  await gw.writeConfig(next)
  expect((await gw.reload()).ok).toBe(true)
}

async function get(token: string): Promise<{ status: number; code?: string; detail?: string }> {
  const res = await request(`${gw.url}/live/now`, { headers: { authorization: `Bearer ${token}` } })
  const body = res.statusCode === 200 ? {} : (await res.body.json()) as { code: string; detail: string }
  if (res.statusCode === 200) await res.body.dump()
  return { status: res.statusCode, ...body }
}

async function tunnelWith(token: string): Promise<RawTunnel> {
  const port = Number(new URL(gw.url).port)
  const tunnel = await openRawTunnel(port, `GET /live/feed HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\n${HANDSHAKE_FIELDS}\r\n`)
  expect(tunnel.status).toBe(101)
  await echoes(tunnel, 'opened')
  return tunnel
}

it('refuses a token exchanged for a user of an issuer a reload removed, and closes its tunnel', async () => {
  await reloadTo(config())
  const user = await corp.token('looker-reports')
  const token = await exchanged(gw.url, { subject: user, actor: await corp.token('analytics-agent') })
  const fromPartner = await exchanged(gw.url, { subject: await partner.token('looker-reports'), actor: await partner.token('analytics-agent') })
  const tunnel = await tunnelWith(token)
  await reloadTo(config('corp'))
  expect(await get(user)).toMatchObject({ status: 401, code: 'issuer_unknown' })
  // Before: 200, and the tunnel stayed open.
  expect(await get(token)).toMatchObject({ status: 401, code: 'issuer_unknown', detail: `The token was exchanged for a token of ${corp.issuer}, which no configured issuer has any longer.` })
  await waitFor(() => tunnel.closed(), 'the gateway closing the tunnel', 5_000)
  expect(tunnel.received().subarray(-CLOSE_1008.length)).toEqual(CLOSE_1008)
  // The other provider's users keep theirs.
  expect(await get(fromPartner)).toMatchObject({ status: 200 })
})

it('refuses a token exchanged for an agent of an issuer a reload removed', async () => {
  await reloadTo(config())
  const token = await exchanged(gw.url, { subject: await corp.token('looker-reports'), actor: await partner.token('analytics-agent') })
  expect(await get(token)).toMatchObject({ status: 200 })
  await reloadTo(config('partner'))
  // Before: 200, the agent's roles being the ones the token carries.
  expect(await get(token)).toMatchObject({ status: 401, code: 'issuer_unknown', detail: `The token was exchanged for a token of ${partner.issuer}, which no configured issuer has any longer.` })
  // explain (POST /api/explain, bouncer explain) says so as the verifier does.
  const explained = await explainAt(gw, ADMIN_TOKEN, { method: 'GET', path: '/live/now', token })
  expect(explained.identity?.problems).toContainEqual({ code: 'issuer_unknown', detail: `The token was exchanged for a token of ${partner.issuer}, which no configured issuer has any longer.` })
})
