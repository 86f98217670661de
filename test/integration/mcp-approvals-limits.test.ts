// Found by an adversarial probe (helper). An approval-gated route tool whose route carries a rate
// limit: the approval check ran before the route's request (and its limits), so calls that ended
// pending never met the limit. Three JSON-RPC batches of 100 calls with distinct arguments filed 300
// pending approvals in ~0.3 s, burying the approvers' list (the admin API lists the newest 1,000).
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { auditRows, MCP_RESOURCE, type McpTestSetup, startMcpTestGateway } from '../helpers/mcp.ts'
import { waitFor } from '../helpers/wait.ts'

let setup: McpTestSetup
let idp: TestIdentityProvider
let gateway: TestGateway
let dir: string

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-approvals-flood', (config) => {
    config.mcp = { ...config.mcp, approvals: [{ tools: ['get_daily_report'], approvers: ['reporter'], ttl: '15m' }] } as typeof config.mcp
    // The agent's pace on the route behind the tool: 1 a second, a burst of 2.
    const routes = config.routes as Array<Record<string, unknown>>
    routes[0]!.limits = ['agent-pace']
    return { ...config, limits: [{ name: 'agent-pace', key: 'principal', rate: '1/s', burst: 2 }] }
  })
  ;({ idp, gateway, dir } = setup)
}, 60_000)

afterAll(() => setup?.close())

function pendingCount(): number {
  const db = new DatabaseSync(join(dir, 'approvals.db'), { readOnly: true })
  try {
    return Number((db.prepare(`SELECT count(*) AS n FROM approvals WHERE status = 'pending'`).get() as { n: number }).n)
  } finally {
    db.close()
  }
}

describe('an approval-gated route tool with a rate-limited route', () => {
  it('a looping agent meets the route\'s limit instead of filing unlimited pending approvals', async () => {
    const agent = await idp.token('analytics-agent', { resource: MCP_RESOURCE })
    const batch = (from: number) => JSON.stringify(Array.from({ length: 100 }, (_, i) => ({
      jsonrpc: '2.0', id: from + i, method: 'tools/call', params: { name: 'get_daily_report', arguments: { region: 'eu', limit: from + i } },
    })))
    let limited = 0
    for (let round = 0; round < 3; round++) {
      // Batches as a 2025-03-26 client sends them: 2025-06-18 and later have none (refused -32600).
      const res = await fetch(`${gateway.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${agent}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-03-26' },
        body: batch(round * 100),
      })
      expect(res.status).toBe(200)
      const text = await res.text()
      if (round === 0) expect(text).toContain('pending_approval')
      limited += text.split('rate_limited').length - 1
    }
    // A burst of 2, then 1 a second: a few pending at most, every other call refused with the route's 429.
    const pending = pendingCount()
    expect(pending).toBeGreaterThanOrEqual(2)
    expect(pending).toBeLessThanOrEqual(5)
    expect(limited).toBeGreaterThan(0)
    // One record per refused call.
    await waitFor(() => auditRows(join(dir, 'audit.db'), `tool = 'get_daily_report' AND code = 'rate_limited' AND status = 429`).length === 300 - pending, 'the refusals audited', 20_000)
  }, 60_000)
})
