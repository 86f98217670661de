// Found by an adversarial probe (helper): with server.workers: 2, the MCP session ids their clients
// DELETEd were remembered by each worker in its own memory, told to the others by message. A worker
// started after the DELETE (a crashed one's replacement) had never heard of it, and opened the
// ended session again from its sealed id: 3 of 10 requests after the replacement were served (200).
// The ended ids are now one table for the process (src/agents/mcp/ended-sessions.ts).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { crashWorker } from '../helpers/inspector.ts'
import { MCP_RESOURCE, mcpTestConfig } from '../helpers/mcp.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'
import { onNewConnection, serveWithWorkers } from '../helpers/workers.ts'

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: ServeProcess
let token: string

const INITIALIZE = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }
const LIST = { jsonrpc: '2.0', id: 2, method: 'tools/list' }

/** An MCP request on a connection of its own: the kernel picks a worker for each. */
function mcp(method: 'POST' | 'DELETE', session: string | null, body?: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' }
  if (session !== null) headers['mcp-session-id'] = session
  return onNewConnection(`${gateway.url}/mcp`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
}

/** The statuses of `count` tools/list requests of the session, each on a new connection. */
const statuses = async (session: string, count: number) => (await Promise.all(Array.from({ length: count }, () => mcp('POST', session, LIST)))).map((r) => r.status)

beforeAll(async () => {
  ;[idp, upstream] = await Promise.all([startIdentityProvider(), startUpstream()])
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-mcp-ended-'))
  ;({ gateway } = await serveWithWorkers(dir, () => mcpTestConfig(idp.issuer, upstream.url, dir), { nodeArgs: ['--inspect=127.0.0.1:0'] }))
  token = await idp.token('looker-reports', { resource: MCP_RESOURCE })
  // Each worker loads the provider's keys on its own: wait until a request on any connection is served.
  await waitFor(async () => (await Promise.all(Array.from({ length: 6 }, () => mcp('POST', null, LIST)))).every((r) => r.status === 200), 'both workers serving', 30_000)
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

it('a DELETEd MCP session is refused by every worker at once, and by a crashed worker\'s replacement', async () => {
  const session = (await mcp('POST', null, INITIALIZE)).headers['mcp-session-id'] as string
  expect(await statuses(session, 8)).toEqual(Array(8).fill(200))
  expect((await mcp('DELETE', session)).status).toBe(200)
  // No waiting for word to reach the other worker: the DELETE is in the table every worker reads.
  expect(await statuses(session, 8)).toEqual(Array(8).fill(404))

  await crashWorker(gateway.stderr, 'w2')
  await waitFor(async () => (await metricValue(gateway.adminUrl, 'bouncer_worker_restarts_total')) === 1, 'the replacement counted', 30_000)
  await waitFor(async () => (await (await fetch(`${gateway.adminUrl}/metrics`)).text()).includes('bouncer_workers{state="running"} 2'), 'both workers running again', 30_000)
  // 16 new connections: about half meet the replacement, which never heard of the DELETE by message.
  expect(await statuses(session, 16)).toEqual(Array(16).fill(404))
}, 90_000)
