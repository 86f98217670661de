// Found by an adversarial probe (helper). MCP 2025-era sessions: one table of 10,000 for the whole
// gateway, no share per caller. One agent that initialized without ever sending DELETE (many
// clients do, on each run) filled it in ~9 s, and every other caller's initialize was refused (503)
// for the 30 minutes idle sessions live. Now a caller holds 100 at most: its oldest ends.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { MCP_RESOURCE, type McpTestSetup, startMcpTestGateway } from '../helpers/mcp.ts'

let setup: McpTestSetup
let idp: TestIdentityProvider
let gateway: TestGateway

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-sessions')
  ;({ idp, gateway } = setup)
}, 60_000)

afterAll(() => setup?.close())

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'loop', version: '1' } } })

// undici's request, not fetch: the gateway runs in this process, and 10,100 fetches' own work was
// about as much as the gateway's.
async function initialize(url: string, token: string): Promise<{ status: number; sessionId: string; text: string }> {
  const res = await request(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: INIT })
  return { status: res.statusCode, sessionId: String(res.headers['mcp-session-id']), text: await res.body.text() }
}

describe('2025-era MCP sessions', () => {
  it('one caller that never ends its sessions does not lock every other caller out of initialize', async () => {
    const url = `${gateway.url}/mcp`
    // The agent has a role with two tools; the same would hold for a token with no role at all.
    const agent = await idp.token('analytics-agent', { resource: MCP_RESOURCE })
    const reporter = await idp.token('looker-reports', { resource: MCP_RESOURCE })
    let opened = 0
    let refusedAt = -1
    const started = Date.now()
    const worker = async () => {
      while (refusedAt === -1 && opened < 10_100) {
        const res = await initialize(url, agent)
        if (res.status === 200) opened++
        else if (refusedAt === -1) refusedAt = opened
      }
    }
    await Promise.all(Array.from({ length: 16 }, worker))
    expect(refusedAt, `refused after ${opened} sessions in ${Date.now() - started} ms`).toBe(-1)
    // Another caller, who has opened nothing, now tries to start its first session.
    const res = await initialize(url, reporter)
    expect(res.status, res.text.slice(0, 200)).toBe(200)
  }, 300_000)

  it('a caller beyond its share of sessions has its least recently used one let go, which its sealed id opens again', async () => {
    const url = `${gateway.url}/mcp`
    const reporter = await idp.token('looker-reports', { resource: MCP_RESOURCE })
    const ids: string[] = []
    for (let i = 0; i < 101; i++) {
      const res = await initialize(url, reporter)
      expect(res.status).toBe(200)
      ids.push(res.sessionId)
    }
    const use = (id: string) => fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${reporter}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    })
    // The share bounds what the gateway holds, not the ids: another worker may be serving the one let go
    // here (sessions.ts), so its next request opens it again, letting this caller's oldest go in its turn.
    expect((await use(ids[0] as string)).status).toBe(200)
    expect((await use(ids[100] as string)).status).toBe(200)
    // An id of that form the gateway did not seal for this caller is still unknown.
    expect((await use(`${crypto.randomUUID()}.${'A'.repeat(22)}`)).status).toBe(404)
  }, 60_000)
})
