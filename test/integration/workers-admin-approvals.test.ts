// With server.workers the admin API's approval decisions are made on the first worker (the primary
// passes /api/approvals/* to it), while an agent's calls land on either worker. An approval lives in
// the approvals store (SQLite, one file every worker opens), not in a worker's memory: a call held
// on one worker, approved through the admin API, runs once on whichever worker the agent's next
// connection meets, and the list the admin API answers is every worker's.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { auditRows, MCP_RESOURCE, mcpTestConfig, WITH_OPS_ONCALL } from '../helpers/mcp.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { onNewConnection, serveWithWorkers } from '../helpers/workers.ts'

const ADMIN = 'workers-admin-approvals-admin-0123'
let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: ServeProcess
let token: string
let opsToken: string
let session: string

beforeAll(async () => {
  ;[idp, upstream] = await Promise.all([startIdentityProvider(WITH_OPS_ONCALL), startUpstream()])
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-approvals-'))
  ;({ gateway } = await serveWithWorkers(dir, () => {
    const config = mcpTestConfig(idp.issuer, upstream.url, dir, { approvals: [{ tools: ['list_*'], approvers: ['ops'], ttl: '15m' }] })
    config.mcp.tools[1] = { ...config.mcp.tools[1]!, query: { region: { type: 'string' } } } as never
    config.roles.push({ name: 'ops', assumed_by: [{ issuer: 'corp-sso', subject: 'ops-oncall' }], policies: [] })
    return { ...config, admin: { listen: '127.0.0.1:0', token: ADMIN } }
  }))
  token = await idp.token('looker-reports', { resource: MCP_RESOURCE })
  opsToken = await idp.token('ops-oncall')
  await waitFor(async () => (await Promise.all(Array.from({ length: 6 }, () => mcp({ jsonrpc: '2.0', id: 1, method: 'initialize', params: INITIALIZE })))).every((r) => r.status === 200), 'both workers serving', 30_000)
  const opened = await mcp({ jsonrpc: '2.0', id: 1, method: 'initialize', params: INITIALIZE })
  session = opened.headers['mcp-session-id'] as string
  expect(session).toBeTruthy()
  expect((await mcp({ jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202)
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

const INITIALIZE = { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } }

/** One MCP request on a connection of its own (the kernel picks the worker). */
async function mcp(body: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' }
  if (session) headers['mcp-session-id'] = session
  return onNewConnection(`${gateway.url}/mcp`, { method: 'POST', headers, body: JSON.stringify(body) })
}

/** A tools/call's structured result (the answer as JSON, or the last `data:` of an event stream). */
async function call(region: string): Promise<Record<string, unknown>> {
  const answer = await mcp({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'list_customers', arguments: { region } } })
  expect(answer.status, answer.body).toBe(200)
  const text = answer.headers['content-type']?.toString().includes('text/event-stream') ? (answer.body.split('\n').filter((l) => l.startsWith('data:')).at(-1) ?? '').slice(5) : answer.body
  const { result } = JSON.parse(text) as { result: { structuredContent: Record<string, unknown> } }
  return result.structuredContent
}

async function admin(method: 'GET' | 'POST', path: string, body?: unknown) {
  const res = await request(`${gateway.adminUrl}/api/${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
  return { status: res.statusCode, body: (await res.body.json()) as unknown }
}

const rows = () => auditRows(join(dir, 'audit.db'), `tool = 'list_customers' AND path NOT LIKE '/api/%'`) as Array<{ instance: string; status: number; code: string | null }>

it('a call held on either worker, approved through the admin API, runs once on whichever worker the next connection meets', async () => {
  const ranOn = new Set<string>()
  const heldOn = new Set<string>()
  for (let round = 0; round < 16 && (ranOn.size < 2 || heldOn.size < 2); round++) {
    const region = `r${round}`
    const pending = await call(region)
    expect(pending).toMatchObject({ status: 'pending_approval', approval_id: expect.any(String) })
    const id = pending.approval_id as string
    // Listed by the admin API (the first worker) whichever worker filed it.
    const listed = (await admin('GET', 'approvals?status=pending')).body as Array<{ id: string }>
    expect(listed.map((a) => a.id)).toContain(id)
    expect(await admin('POST', `approvals/${id}/approve`, { token: opsToken })).toMatchObject({ status: 200, body: { id, status: 'approved' } })
    const ran = await call(region)
    expect(ran).toMatchObject({ url: `/sales/customers?region=${region}` })
    expect((await admin('GET', `approvals/${id}`)).body).toMatchObject({ status: 'used' })
    // Once: the same call again is a new approval, not a second run.
    expect(await call(region)).toMatchObject({ status: 'pending_approval' })
    expect(upstream.received.filter((r) => r.url === `/sales/customers?region=${region}`)).toHaveLength(1)
    // Which worker held it and which ran it: the audit records' instance ends in /w1 or /w2.
    await waitFor(() => rows().length >= (round + 1) * 3, 'the round\'s three tool calls in the audit log', 20_000)
    for (const row of rows()) {
      const worker = row.instance.split('/').at(-1) as string
      if (row.code === 'approval_pending') heldOn.add(worker)
      else if (row.status === 200) ranOn.add(worker)
    }
  }
  expect({ heldOn: [...heldOn].sort(), ranOn: [...ranOn].sort() }).toEqual({ heldOn: ['w1', 'w2'], ranOn: ['w1', 'w2'] })
}, 180_000)
