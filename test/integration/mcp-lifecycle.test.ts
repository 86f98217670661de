// MCP connections over time: a client that goes away ends its notification stream at the gateway;
// a reload disconnects an upstream MCP server the new config no longer aggregates (the server sees
// the gateway's notification stream end), keeps one whose settings did not change, and closes an
// approvals store no config uses.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { connect, MCP_RESOURCE, mcpTestConfig } from '../helpers/mcp.ts'
import { startChangingServer, type ChangingMcpServer } from '../helpers/mcp-servers.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { handlesOn } from '../helpers/open-files.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'

const ADMIN = 'mcp-retire-admin-token-0123456789'

let idp: TestIdentityProvider
let upstream: TestUpstream
let tickets: ChangingMcpServer
let gateway: TestGateway
let dir: string

function config(servers: object[], approvalsPath: string) {
  const base = mcpTestConfig(idp.issuer, upstream.url, dir, {
    servers,
    approvals: [{ tools: ['list_*'], approvers: ['reporter'], ttl: '15m' }],
    approvals_store: { type: 'sqlite', path: approvalsPath },
  })
  return { ...base, admin: { token: ADMIN } }
}


/** Sessions the gateway opened on the server: its initialize requests carry no session id. */
const initializes = () => tickets.requests.filter((headers) => headers['mcp-session-id'] === undefined).length

beforeAll(async () => {
  ;[idp, upstream, tickets] = await Promise.all([startIdentityProvider(), startUpstream(), startChangingServer()])
  dir = await mkdtemp(join(tmpdir(), 'bouncer-mcp-retire-'))
  gateway = await startTestGateway(config([{ name: 'tickets', url: tickets.url }], join(dir, 'approvals-1.db')))
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'keys', 20_000)
}, 90_000)

afterAll(async () => {
  await gateway?.close()
  await Promise.all([upstream?.close(), tickets?.close(), idp?.stop()])
  await rm(dir, { recursive: true, force: true })
})

it('ends a notification stream when its client goes away: no longer in flight', async () => {
  const token = await idp.token('looker-reports', { resource: MCP_RESOURCE })
  const client = await connect(`${gateway.url}/mcp`, token, '2025-11-25')
  await client.listTools()
  await waitFor(async () => (await metricValue(gateway.adminUrl, 'bouncer_requests_in_flight')) === 1, 'the client\'s notification stream', 20_000)
  await client.close() // aborts its stream, as a client that loses its network does
  // The gateway let go of it: before, the request stayed in flight until the session ended (a
  // shutdown or reload waited its full shutdown_timeout for it).
  await waitFor(async () => (await metricValue(gateway.adminUrl, 'bouncer_requests_in_flight')) === 0, 'the stream to end at the gateway', 20_000)
  expect(gateway.state.runtime.usage.inFlight).toBe(0)
}, 60_000)

it('disconnects a server and closes an approvals store the reloaded config dropped, and keeps what it kept', async () => {
  const token = await idp.token('looker-reports', { resource: MCP_RESOURCE })
  const reporter = await connect(`${gateway.url}/mcp`, token, '2025-11-25')
  expect((await reporter.listTools()).tools.map((t) => t.name)).toContain('tickets__alpha')
  await waitFor(() => tickets.openStreams() === 1, 'the gateway\'s notification stream on the server', 20_000)
  expect(initializes()).toBe(1)
  // The admin API opens the approvals store.
  const listed = await request(`${gateway.adminUrl}/api/approvals`, { headers: { authorization: `Bearer ${ADMIN}` } })
  expect(listed.statusCode).toBe(200)
  await listed.body.dump()
  expect(handlesOn(join(dir, 'approvals-1.db'))).toBeGreaterThan(0)

  // Same server settings, same store: nothing is closed; the server keeps the one session.
  await gateway.writeConfig(config([{ name: 'tickets', url: tickets.url }], join(dir, 'approvals-1.db')))
  expect((await gateway.reload()).ok).toBe(true)
  expect((await reporter.callTool({ name: 'tickets__alpha', arguments: {} })).content).toEqual([{ type: 'text', text: 'alpha done' }])
  expect(initializes()).toBe(1)
  expect(tickets.openStreams()).toBe(1)
  expect(handlesOn(join(dir, 'approvals-1.db'))).toBeGreaterThan(0)
  // The client's own notification stream is a request of the config it began on, which keeps that
  // config's resources while it is open: it ends here.
  await reporter.close()

  // The server dropped and the store moved: the old ones close once no request of the old config runs.
  await gateway.writeConfig(config([], join(dir, 'approvals-2.db')))
  expect((await gateway.reload()).ok).toBe(true)
  await waitFor(() => tickets.openStreams() === 0, 'the server\'s stream to end', 20_000)
  await waitFor(() => handlesOn(join(dir, 'approvals-1.db')) === 0, 'the dropped approvals store to close', 20_000)
  const again = await connect(`${gateway.url}/mcp`, token, '2025-11-25')
  try {
    expect((await again.listTools()).tools.map((t) => t.name)).not.toContain('tickets__alpha')
  } finally {
    await again.close()
  }
}, 60_000)
