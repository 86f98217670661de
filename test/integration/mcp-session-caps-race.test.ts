// Found by review. MCP 2025-era sessions: the caps (100 a caller, 10,000 in all) were checked
// before the awaits of an open, and the session joined the table only after them. In the transparent
// mode an open waits for the server's capabilities, so for as long as the gateway's connection to it
// took (up to its timeout), every initialize passed the check: a caller holding its 100 sent 100 more
// at once and 99 of its old ones stayed (199 held), and a caller's 150 at once were 150 sessions.
// Now an open counts from its check on: the oldest one is let go, and when the caller's whole share
// is being opened, the initialize beyond it is refused (503).
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server, WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/server'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { MCP_RESOURCE, type McpTestSetup, startMcpTestGateway } from '../helpers/mcp.ts'
import { answerWith } from '../helpers/mcp-servers.ts'
import { waitFor } from '../helpers/wait.ts'

/** MAX_SESSIONS_PER_CALLER in src/agents/mcp/sessions.ts. */
const SHARE = 100
const VERSION = '2025-11-25'

/**
 * A real MCP server (the SDK's, stateless) the test can take down (503 at once) or hold (requests
 * wait, unanswered, until it is up or down again): the gateway's connection to it is then opening.
 */
type Mode = 'up' | 'down' | 'hold'
let mode: Mode = 'down'
const held: Array<() => void> = []
let received = 0
const upstream = createServer((req, res) => void answer(req, res))
async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
  received++
  if (mode === 'hold') await new Promise<void>((resume) => held.push(resume))
  if (mode === 'down') return void res.writeHead(503).end()
  const mcp = new Server({ name: 'held', version: '1' }, { capabilities: { tools: {}, resources: {} } })
  mcp.setRequestHandler('tools/list', async () => ({ tools: [{ name: 'held_tool', inputSchema: { type: 'object' } }] }))
  mcp.setRequestHandler('resources/list', async () => ({ resources: [] }))
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
  await mcp.connect(transport)
  await answerWith(transport, req, res)
}
function setMode(next: Mode): void {
  mode = next
  if (next !== 'hold') for (const resume of held.splice(0)) resume()
}

let setup: McpTestSetup

beforeAll(async () => {
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`
  // Transparent (one server, prefix: false): each session's initialize asks the server's capabilities.
  setup = await startMcpTestGateway('mcp-session-caps-race', (config) => ({
    ...config,
    mcp: { ...config.mcp, tools: [], servers: [{ name: 'held', url, prefix: false }] },
  }))
}, 60_000)

afterAll(async () => {
  setMode('down')
  await setup?.close()
  upstream.closeAllConnections()
  upstream.close()
})

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'race', version: '1' } } })

const mint = (sub: string) => setup.idp.mint({ sub, aud: MCP_RESOURCE, exp: Math.floor(Date.now() / 1000) + 600 })

// undici's request, not fetch: hundreds at once, and streams held open.
async function initialize(token: string): Promise<{ status: number; sessionId: string | undefined; text: string }> {
  const res = await request(`${setup.gateway.url}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: INIT })
  const id = res.headers['mcp-session-id']
  return { status: res.statusCode, sessionId: typeof id === 'string' ? id : undefined, text: await res.body.text() }
}

/** A session's notification (GET) stream: `ended` is set when the gateway ends it (its session let go). */
async function notificationStream(token: string, sessionId: string): Promise<{ ended: boolean }> {
  const res = await request(`${setup.gateway.url}/mcp`, { method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': VERSION } })
  expect(res.statusCode).toBe(200)
  const stream = { ended: false }
  void res.body.text().then(() => (stream.ended = true), () => (stream.ended = true))
  return stream
}

it('a caller holding its share that initializes many at once while the server connects has as many of its old sessions let go', async () => {
  const token = await mint('looker-reports')
  // Its share, opened one by one while the server is down (a session opens without its capabilities).
  setMode('down')
  const streams: Array<{ ended: boolean }> = []
  for (let i = 0; i < SHARE; i++) {
    const { status, sessionId } = await initialize(token)
    expect(status).toBe(200)
    streams.push(await notificationStream(token, sessionId as string))
  }
  expect(streams.filter((s) => s.ended)).toHaveLength(0)

  // The server now takes the gateway's connection and answers nothing yet: every open waits on it.
  setMode('hold')
  const before = received
  const answers = Array.from({ length: SHARE }, () => initialize(token))
  try {
    await waitFor(() => received > before, 'the gateway connecting to the server')
    // Each initialize lets one old session go as it passes the check, before it waits. Before, the
    // first let one go and the other 99 passed a check that counted none of those being opened.
    await waitFor(() => streams.every((s) => s.ended), `all ${SHARE} old sessions let go (${streams.filter((s) => s.ended).length} were)`)
  } finally {
    setMode('down')
  }
  const opened = await Promise.all(answers)
  expect(opened.map((a) => a.status)).toEqual(Array(SHARE).fill(200))
  expect(new Set(opened.map((a) => a.sessionId)).size).toBe(SHARE)
}, 120_000)

it('a caller whose whole share is being opened has the initializes beyond it refused, and its share opens', async () => {
  const token = await mint('looker-finance')
  setMode('hold')
  const extra = 50
  const done: Array<{ status: number; text: string }> = []
  const answers = Array.from({ length: SHARE + extra }, () => initialize(token).then((a) => (done.push(a), a)))
  try {
    // Refused at once, while the share waits for the server. Before, all 150 waited and all opened.
    await waitFor(() => done.length >= extra, `${extra} initializes answered while the server holds the connection (${done.length} were)`)
    expect(done.map((a) => a.status)).toEqual(Array(extra).fill(503))
    expect(JSON.parse(done[0]?.text as string)).toMatchObject({ code: 'upstream_saturated', detail: `This caller has ${SHARE} MCP sessions being opened already; try again when they are.` })
  } finally {
    // The server answers: the connection opens, and so does every session waiting on it.
    setMode('up')
  }
  const all = await Promise.all(answers)
  const opened = all.filter((a) => a.status === 200)
  expect(opened).toHaveLength(SHARE)
  expect(all.filter((a) => a.status === 503)).toHaveLength(extra)
  // Opened with what the server said it offers (its resources), the connection's answer.
  expect(opened.every((a) => a.text.includes('"resources"'))).toBe(true)
}, 120_000)
