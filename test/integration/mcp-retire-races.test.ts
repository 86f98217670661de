// Requests that outlive the MCP runtime they started on, and sessions that outlive it. A reload
// replaces the runtime; the replaced one keeps serving its requests in flight for at most
// shutdown_timeout, then retires: its listeners on the aggregated servers are detached, and the
// servers and approvals stores no kept runtime uses are closed. Each test holds a request at a
// precise point, its token being checked: the token is signed by a key the issuer does not publish
// yet, so the gateway fetches the issuer's JWKS, from a small server of this file that holds its
// answer until the test releases it (jwks_cooldown 100 ms: an unknown kid is fetched at once).
// The tests wait on events (the held JWKS fetch, a file handle closing, the aggregated server's
// stream ending, a socket's close, a metric), never on sleeps.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, request as httpRequest, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { DEFAULT_CLIENTS, signingKey, startIdentityProvider, type SigningKey, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { connect, MCP_RESOURCE, mcpTestConfig } from '../helpers/mcp.ts'
import { startChangingServer, type ChangingMcpServer } from '../helpers/mcp-servers.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { handlesOn } from '../helpers/open-files.ts'
import { deferred, metricValue, waitFor } from '../helpers/wait.ts'

const ADMIN = 'mcp-retire-races-admin-token-0123456789'
const PROTOCOL = '2025-11-25'
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

let idp: TestIdentityProvider
let upstream: TestUpstream
let dir: string

beforeAll(async () => {
  ;[idp, upstream] = await Promise.all([
    startIdentityProvider({ clients: [...DEFAULT_CLIENTS, { clientId: 'ops-oncall', secret: 'ops-oncall-secret-0123456789abcd' }] }),
    startUpstream(),
  ])
  dir = await mkdtemp(join(tmpdir(), 'bouncer-mcp-retire-races-'))
}, 60_000)

afterAll(async () => {
  await Promise.all([upstream?.close(), idp?.stop()])
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** A JWKS endpoint for the identity provider's issuer that can hold one fetch until the test releases it. */
interface HeldJwks {
  url: string
  /** Holds the next fetch; `arrived` resolves when it comes, `release` publishes `key` and answers it. */
  holdNext(key: SigningKey): { arrived: Promise<void>; release: () => void }
  /** When the last fetch was answered (the issuer's jwks_cooldown runs from there). */
  readonly answeredAt: number
  close(): Promise<void>
}

async function startHeldJwks(keys: readonly SigningKey[]): Promise<HeldJwks> {
  const published = keys.map((key) => key.publicJwk)
  let answeredAt = 0
  let hold: { arrived: () => void; released: Promise<SigningKey> } | null = null
  const answer = (res: ServerResponse) => {
    answeredAt = Date.now()
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ keys: published }))
  }
  const server = createServer((_req: IncomingMessage, res: ServerResponse) => {
    const held = hold
    hold = null
    if (!held) return answer(res)
    held.arrived()
    void held.released.then((key) => {
      published.push(key.publicJwk)
      answer(res)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/jwks`,
    get answeredAt() {
      return answeredAt
    },
    holdNext(key) {
      const arrived = deferred()
      const released = deferred<SigningKey>()
      hold = { arrived: () => arrived.resolve(), released: released.promise }
      return { arrived: arrived.promise, release: () => released.resolve(key) }
    },
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close').catch(() => {})
    },
  }
}

/**
 * The MCP test config, its issuer's keys from `jwks` (when given) with a 100 ms cool-down, the
 * approvals of list_* decided by `ops`, stored at `approvalsPath`.
 */
function config(options: { jwks?: HeldJwks; servers?: ChangingMcpServer[]; approvalsPath: string; shutdownTimeout?: string }) {
  const base = mcpTestConfig(idp.issuer, upstream.url, dir, {
    servers: (options.servers ?? []).map((server, i) => ({ name: i === 0 ? 'tickets' : `tickets${i}`, url: server.url })),
    approvals: [{ tools: ['list_*'], approvers: ['ops'], ttl: '15m' }],
    approvals_store: { type: 'sqlite', path: options.approvalsPath },
  })
  base.roles.push({ name: 'ops', assumed_by: [{ issuer: 'corp-sso', subject: 'ops-oncall' }], policies: [] })
  const issuer = options.jwks ? { ...base.issuers[0], jwks_uri: options.jwks.url, jwks_cooldown: '100ms' } : base.issuers[0]
  return {
    ...base,
    issuers: [issuer],
    admin: { token: ADMIN },
    ...(options.shutdownTimeout ? { server: { shutdown_timeout: options.shutdownTimeout } } : {}),
  }
}

async function startGatewayWith(options: Parameters<typeof config>[0]): Promise<TestGateway> {
  const gateway = await startTestGateway(config(options))
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'the issuer keys', 20_000)
  return gateway
}

/** Holds the next JWKS fetch, once the issuer's cool-down since the last one has passed (a token with an unknown kid then fetches at once). */
async function holdJwks(jwks: HeldJwks, key: SigningKey) {
  await waitFor(() => Date.now() - jwks.answeredAt > 150, 'the JWKS cool-down to pass')
  return jwks.holdNext(key)
}


const inFlight = (gateway: TestGateway) => metricValue(gateway.adminUrl, 'bouncer_requests_in_flight')

/** The JSON-RPC message of an answer, sent as JSON or as one event of an event stream. */
function rpcMessage(body: string): { result?: { isError?: boolean; content?: unknown }; error?: { message: string } } {
  const data = body.split('\n').find((line) => line.startsWith('data: '))
  return JSON.parse(data === undefined ? body : data.slice('data: '.length)) as never
}

/** Opens a 2025-era session with raw requests (no SDK client, which would hold the notification stream itself). */
async function openSession(gateway: TestGateway, token: string): Promise<string> {
  const headers = { ...MCP_HEADERS, authorization: `Bearer ${token}` }
  const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }
  const opened = await request(`${gateway.url}/mcp`, { method: 'POST', headers, body: JSON.stringify(initialize) })
  expect(opened.statusCode).toBe(200)
  await opened.body.dump()
  const session = opened.headers['mcp-session-id'] as string
  const initialized = await request(`${gateway.url}/mcp`, {
    method: 'POST',
    headers: { ...headers, 'mcp-session-id': session, 'mcp-protocol-version': PROTOCOL },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  })
  expect(initialized.statusCode).toBe(202)
  await initialized.body.dump()
  return session
}

/** A GET notification stream on a session, through node:http so that the test can go away mid-request. */
function notificationStream(gateway: TestGateway, session: string, token: string): { req: ClientRequest; response: Promise<IncomingMessage>; socket: Promise<Socket> } {
  const req = httpRequest(`${gateway.url}/mcp`, {
    method: 'GET',
    agent: false,
    headers: { accept: 'text/event-stream', authorization: `Bearer ${token}`, 'mcp-session-id': session, 'mcp-protocol-version': PROTOCOL },
  })
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', resolve)
    req.on('error', reject)
  })
  response.catch(() => {})
  const socket = new Promise<Socket>((resolve) => req.on('socket', (s) => (s.connecting ? s.once('connect', () => resolve(s)) : resolve(s))))
  req.end()
  return { req, response, socket }
}

// Guards: a 2025-era session that only held its notification (GET) stream stopped hearing
// notifications/tools/list_changed once a reload's replaced runtime retired. The new runtime took
// the path's sessions but did not serve them until its first MCP request (takeSessions did not call
// serveFrom), so its listener on the aggregated server ignored the change, and the replaced
// runtime's listener, which had reached the session, was detached when it retired.
it('a client holding only its notification stream across a reload is still told the tools changed', async () => {
  const tickets = await startChangingServer()
  const gateway = await startGatewayWith({ servers: [tickets], approvalsPath: join(dir, 'notify-1.db'), shutdownTimeout: '1s' })
  const client = await connect(`${gateway.url}/mcp`, await idp.token('looker-reports', { resource: MCP_RESOURCE }), PROTOCOL)
  try {
    let changes = 0
    client.setNotificationHandler('notifications/tools/list_changed', () => void changes++)
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('tickets__alpha')
    await waitFor(() => gateway.state.inFlight === 1, 'the client\'s notification stream', 20_000)
    await waitFor(() => tickets.openStreams() === 1, 'the gateway\'s notification stream on the server', 20_000)
    // The approvals store of this config is opened, so that its closing shows the replaced runtime retired.
    const listed = await request(`${gateway.adminUrl}/api/approvals`, { headers: { authorization: `Bearer ${ADMIN}` } })
    expect(listed.statusCode).toBe(200)
    await listed.body.dump()
    expect(handlesOn(join(dir, 'notify-1.db'))).toBeGreaterThan(0)

    // Same server, another approvals store. The client's notification stream is a request of the
    // replaced runtime, which keeps it (and its store) for shutdown_timeout (1 s), then retires:
    // its store closes in the same pass that detaches its listeners.
    await gateway.writeConfig(config({ servers: [tickets], approvalsPath: join(dir, 'notify-2.db'), shutdownTimeout: '1s' }))
    expect((await gateway.reload()).ok).toBe(true)
    await waitFor(() => handlesOn(join(dir, 'notify-1.db')) === 0, 'the replaced runtime to retire', 20_000)
    expect(gateway.state.inFlight).toBe(1) // the stream is still open, and nothing else was asked
    expect(tickets.openStreams()).toBe(1) // the server is kept: same settings

    const before = changes
    tickets.addTool('beta')
    await waitFor(() => changes > before, 'notifications/tools/list_changed on the client\'s stream', 10_000)
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('tickets__beta')
  } finally {
    await client.close()
    await gateway.close()
    await tickets.close()
  }
}, 60_000)

// Guards: an approvals store a reload retired while an admin request that began before still used
// it (POST /api/approvals/{id}/approve, its approver's token being checked) was reopened by that
// request and never closed again, not even at shutdown: the registry had already let go of it.
it('an approval decided across a reload that moved the approvals store leaves no file open', async () => {
  const late = await signingKey('late-approver', 'ES256')
  const jwks = await startHeldJwks(idp.keys)
  const oldStore = join(dir, 'moved-1.db')
  const gateway = await startGatewayWith({ jwks, approvalsPath: oldStore })
  let closed = false
  try {
    const reporter = await connect(`${gateway.url}/mcp`, await idp.token('looker-reports', { resource: MCP_RESOURCE }), PROTOCOL)
    const pending = (await reporter.callTool({ name: 'list_customers', arguments: {} })).structuredContent as { status: string; approval_id: string }
    await reporter.close()
    expect(pending.status).toBe('pending_approval')
    expect(handlesOn(oldStore)).toBeGreaterThan(0)

    const held = await holdJwks(jwks, late)
    const approverToken = await idp.mint({ sub: 'ops-oncall' }, { key: late })
    const decided = request(`${gateway.adminUrl}/api/approvals/${pending.approval_id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token: approverToken }),
    })
    await held.arrived // the approver's token is being checked: the request has the old config's store

    await gateway.writeConfig(config({ jwks, approvalsPath: join(dir, 'moved-2.db') }))
    expect((await gateway.reload()).ok).toBe(true)
    await waitFor(() => handlesOn(oldStore) === 0, 'the moved approvals store to close', 20_000)

    held.release()
    const res = await decided
    const body = (await res.body.json()) as { status?: string }
    expect(res.statusCode, JSON.stringify(body)).toBe(200)
    expect(body.status).toBe('approved')
    expect(handlesOn(oldStore), 'the late request left the retired store open').toBe(0)
    await gateway.close()
    closed = true
    expect(handlesOn(oldStore), 'the retired store is still open after shutdown').toBe(0)
  } finally {
    if (!closed) await gateway.close()
    await jwks.close()
  }
}, 60_000)

// Guards: a request of a retired runtime (held past shutdown_timeout, its token being checked)
// that called an aggregated server's tool connected that server again, though no config used it
// any more: the call ran, and the new connection (its notification stream on the server) stayed
// open after shutdown, since the registry had already let go of the server.
it('a tool call that outlives its config\'s shutdown_timeout gets an error and reconnects nothing', async () => {
  const late = await signingKey('late-caller', 'ES256')
  const [jwks, tickets] = await Promise.all([startHeldJwks(idp.keys), startChangingServer()])
  const gateway = await startGatewayWith({ jwks, servers: [tickets], approvalsPath: join(dir, 'late-call.db'), shutdownTimeout: '1s' })
  const initializes = () => tickets.requests.filter((headers) => headers['mcp-session-id'] === undefined).length
  let closed = false
  try {
    const warm = await connect(`${gateway.url}/mcp`, await idp.token('looker-reports', { resource: MCP_RESOURCE }), PROTOCOL)
    expect((await warm.listTools()).tools.map((t) => t.name)).toContain('tickets__alpha')
    await warm.close()
    await waitFor(() => tickets.openStreams() === 1, 'the gateway\'s notification stream on the server', 20_000)
    await waitFor(() => gateway.state.inFlight === 0, 'the warm-up client\'s requests to end', 20_000)
    expect(initializes()).toBe(1)

    const held = await holdJwks(jwks, late)
    const token = await idp.mint({ sub: 'looker-reports', aud: MCP_RESOURCE }, { key: late })
    // Sessionless (the SDK's stateless 2025-era serving): answered by the runtime the request started on.
    const call = request(`${gateway.url}/mcp`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, authorization: `Bearer ${token}`, 'mcp-protocol-version': PROTOCOL },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'tickets__alpha', arguments: {} } }),
    })
    await held.arrived
    expect(gateway.state.inFlight).toBe(1)

    // The new config drops the server. The held call keeps its runtime for shutdown_timeout (1 s);
    // then the runtime retires and the server is disconnected: its stream on the server ends.
    await gateway.writeConfig(config({ jwks, servers: [], approvalsPath: join(dir, 'late-call.db'), shutdownTimeout: '1s' }))
    expect((await gateway.reload()).ok).toBe(true)
    await waitFor(() => tickets.openStreams() === 0, 'the retired runtime\'s server to be disconnected', 20_000)

    held.release()
    const res = await call
    const text = await res.body.text()
    const message = rpcMessage(text)
    expect(message.error !== undefined || message.result?.isError === true, `the late call ran: ${text}`).toBe(true)
    expect(text).not.toContain('alpha done')
    expect(initializes(), 'the server was connected again').toBe(1)
    await gateway.close()
    closed = true
    expect(tickets.openStreams(), 'a connection to the server outlived the shutdown').toBe(0)
  } finally {
    if (!closed) await gateway.close()
    await jwks.close()
    await tickets.close()
  }
}, 60_000)

// Guards: a client that opened a GET notification stream on an existing 2025-era session and went
// away while its token was being checked (before the answer's head) left the request in flight for
// good: the response had closed before the endpoint listened for its close, so the SDK's stream was
// never cancelled, and the session's one stream slot stayed taken (a retry answered 409).
it('a client that leaves while its notification stream\'s token is checked can open the stream again', async () => {
  const late = await signingKey('late-stream', 'ES256')
  const jwks = await startHeldJwks(idp.keys)
  const gateway = await startGatewayWith({ jwks, approvalsPath: join(dir, 'leaving.db'), shutdownTimeout: '1s' })
  const gatewayPort = Number(new URL(gateway.url).port)
  // The gateway's side of each connection to it (in-process): the test sees when the gateway has seen the client leave.
  const accepted: Socket[] = []
  const onSocket = (message: unknown) => {
    const { socket } = message as { socket: Socket }
    if (socket.localPort === gatewayPort) accepted.push(socket)
  }
  subscribe('net.server.socket', onSocket)
  let retry: ClientRequest | undefined
  try {
    const session = await openSession(gateway, await idp.token('looker-reports', { resource: MCP_RESOURCE }))
    const held = await holdJwks(jwks, late)
    const token = await idp.mint({ sub: 'looker-reports', aud: MCP_RESOURCE }, { key: late })
    const leaving = notificationStream(gateway, session, token)
    const clientSocket = await leaving.socket
    await held.arrived
    expect(await inFlight(gateway)).toBe(1)

    const gatewaySide = accepted.find((socket) => socket.remotePort === clientSocket.localPort)
    expect(gatewaySide, 'the gateway\'s side of the stream\'s connection').toBeDefined()
    const gone = once(gatewaySide as Socket, 'close')
    leaving.req.destroy() // the client goes away before the answer's head
    await gone // and the gateway has seen it
    held.release()

    await waitFor(async () => (await inFlight(gateway)) === 0, 'the left request to end', 10_000)
    const again = notificationStream(gateway, session, token)
    retry = again.req
    const res = await again.response
    expect(res.statusCode, 'the session\'s stream slot is still taken').not.toBe(409)
    expect(res.statusCode).toBe(200)
  } finally {
    unsubscribe('net.server.socket', onSocket)
    retry?.destroy()
    await gateway.close()
    await jwks.close()
  }
}, 60_000)
