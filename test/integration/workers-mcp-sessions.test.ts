// Found by a probe: with server.workers: 2, 2025-era MCP sessions lived in the worker that took the
// initialize, and a client's connections land on any worker. The official SDK client sends
// notifications/initialized on a second connection while the first still streams initialize's
// answer: 8 of 20 fresh clients failed to connect (404 "Session not found"), and 30 of 36 tool calls
// of the others failed the same way; a client on a long-lived connection pool fared worse. A
// session's id is now sealed for its owner, so any worker opens it again (src/agents/mcp/sessions.ts).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { Agent, fetch as undiciFetch, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { MCP_RESOURCE, mcpTestConfig } from '../helpers/mcp.ts'
import { startChangingServer, type ChangingMcpServer } from '../helpers/mcp-servers.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { onNewConnection as newConnection, serveWithWorkers } from '../helpers/workers.ts'

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: ServeProcess
let tickets: ChangingMcpServer
let token: string
let otherToken: string

beforeAll(async () => {
  ;[idp, upstream, tickets] = await Promise.all([startIdentityProvider(), startUpstream(), startChangingServer()])
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-mcp-'))
  ;({ gateway } = await serveWithWorkers(dir, () => mcpTestConfig(idp.issuer, upstream.url, dir, { servers: [{ name: 'tickets', url: tickets.url }] })))
  token = await idp.token('looker-reports', { resource: MCP_RESOURCE })
  otherToken = await idp.token('analytics-agent', { resource: MCP_RESOURCE })
  // Each worker loads the provider's keys on its own: wait until a request on any connection is served.
  await waitFor(async () => (await Promise.all(Array.from({ length: 6 }, () => onNewConnection('POST', {}, { jsonrpc: '2.0', id: 1, method: 'tools/list' })))).every((r) => r.status === 200), 'both workers serving', 30_000)
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await Promise.all([upstream?.close(), tickets?.close()])
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

/** One MCP request on a connection of its own: the kernel picks a worker for each. */
async function onNewConnection(method: 'POST' | 'DELETE', headers: Record<string, string>, body?: unknown, bearer = token) {
  const answer = await newConnection(`${gateway.url}/mcp`, { method, headers: mcpHeaders(headers, bearer), body: body === undefined ? undefined : JSON.stringify(body) })
  return { status: answer.status, headers: answer.headers, text: answer.body }
}

function mcpHeaders(headers: Record<string, string>, bearer = token): Record<string, string> {
  return { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25', connection: 'close', ...headers }
}

const INITIALIZE = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }

describe('2025-era MCP sessions with server.workers: 2', () => {
  it('the official SDK client, on a fresh connection pool each time, connects and calls tools whichever worker each request meets', async () => {
    const outcomes: string[] = []
    for (let round = 0; round < 6; round++) {
      const pool = new Agent()
      const client = new Client({ name: 'workers-test', version: '1' }, { supportedProtocolVersions: ['2025-11-25'] })
      const transport = new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
        fetch: ((url: string | URL, init?: RequestInit) => undiciFetch(url, { ...(init as object), dispatcher: pool })) as typeof fetch,
      })
      try {
        await client.connect(transport)
        for (let call = 0; call < 3; call++) {
          const tools = await client.listTools()
          const result = await client.callTool({ name: 'list_customers', arguments: {} })
          outcomes.push(`${tools.tools.length > 0} ${result.isError ?? false}`)
        }
        const both = await Promise.all([client.listTools(), client.listTools()])
        outcomes.push(`${both.every((t) => t.tools.length > 0)} false`)
      } catch (err) {
        outcomes.push(`failed: ${(err as Error).message}`)
      } finally {
        await client.close().catch(() => {})
        await pool.close()
      }
    }
    expect(outcomes).toEqual(Array(24).fill('true false'))
  }, 120_000)

  it('a session opened on one worker serves on every connection, for its owner only, until a DELETE on any worker ends it everywhere', async () => {
    const opened = await onNewConnection('POST', {}, INITIALIZE)
    expect(opened.status).toBe(200)
    const session = opened.headers['mcp-session-id'] as string
    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' }
    const statuses = async (count: number, bearer = token) => (await Promise.all(Array.from({ length: count }, () => onNewConnection('POST', { 'mcp-session-id': session }, list, bearer)))).map((r) => r.status)
    expect(await statuses(10)).toEqual(Array(10).fill(200))
    // Another identity with the id: refused by whichever worker it meets.
    expect(await statuses(6, otherToken)).toEqual(Array(6).fill(404))
    const ended = await onNewConnection('DELETE', { 'mcp-session-id': session })
    expect(ended.status).toBe(200)
    // In the process's table of ended sessions before the DELETE is answered: refused everywhere at once.
    expect(await statuses(8)).toEqual(Array(8).fill(404))
  }, 60_000)

  it('a call cancelled on another worker than the one running it is cancelled at the MCP server', async () => {
    const opened = await onNewConnection('POST', {}, INITIALIZE)
    const session = opened.headers['mcp-session-id'] as string
    // Four rounds: a cancel that met only the call's own worker would pass one round in two.
    for (let round = 0; round < 4; round++) {
      const cancelledBefore = tickets.cancelled.length
      const callId = 100 + round
      const calling = new Agent()
      try {
        const call = await request(`${gateway.url}/mcp`, { dispatcher: calling, method: 'POST', headers: mcpHeaders({ 'mcp-session-id': session }), body: JSON.stringify({ jsonrpc: '2.0', id: callId, method: 'tools/call', params: { name: 'tickets__endless', arguments: {}, _meta: { progressToken: callId } } }) })
        expect(call.statusCode).toBe(200)
        // The first progress report on the call's stream: the call runs at the server.
        await new Promise<void>((resolve, reject) => {
          call.body.on('data', (chunk: Buffer) => void (chunk.toString().includes('notifications/progress') && resolve()))
          call.body.on('error', reject)
        })
        const cancel = await onNewConnection('POST', { 'mcp-session-id': session }, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: callId, reason: 'the agent gave up' } })
        expect(cancel.status).toBe(202)
        await waitFor(() => tickets.cancelled.length > cancelledBefore, `round ${round}: the server told to cancel the call`, 10_000)
      } finally {
        await calling.destroy()
      }
    }
  }, 90_000)
})
