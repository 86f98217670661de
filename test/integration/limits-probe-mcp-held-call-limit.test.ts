// Found by the limits probe (helper): an approval-gated route tool whose call is refused by its
// route's limit before it is filed (mcp/protocol.ts charges the route for a held call) was audited
// with code rate_limited and no `limit`: the record did not name the limit that refused it, as
// every other 429 of a route's limit does (README: "its code and the audit record name the limit"),
// and the console's limits, counted from the records, never showed a looping agent meeting it.
import { join } from 'node:path'
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
  setup = await startMcpTestGateway('limits-probe-mcp-held-call-limit', (config) => {
    config.mcp = { ...config.mcp, approvals: [{ tools: ['get_daily_report'], approvers: ['reporter'], ttl: '15m' }] } as typeof config.mcp
    const routes = config.routes as Array<Record<string, unknown>>
    routes[0]!.limits = ['agent-pace']
    // One call, then one an hour: the second is refused whatever the machine's pace.
    return { ...config, limits: [{ name: 'agent-pace', key: 'principal', rate: '1/h', burst: 1 }] }
  })
  ;({ idp, gateway, dir } = setup)
}, 60_000)

afterAll(() => setup?.close())

async function call(agent: string, id: number): Promise<string> {
  const res = await fetch(`${gateway.url}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${agent}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-03-26' },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'get_daily_report', arguments: { region: 'eu', limit: id } } }),
  })
  expect(res.status).toBe(200)
  return await res.text()
}

describe('a held tool call refused by its route\'s limit', () => {
  it('is audited naming the limit', async () => {
    const agent = await idp.token('analytics-agent', { resource: MCP_RESOURCE })
    expect(await call(agent, 1)).toContain('pending_approval')
    expect(await call(agent, 2)).toContain('rate_limited')
    const where = `tool = 'get_daily_report' AND code = 'rate_limited'`
    await waitFor(() => auditRows(join(dir, 'audit.db'), where).length === 1, 'the refusal audited', 10_000)
    expect(auditRows(join(dir, 'audit.db'), where)[0]).toMatchObject({ status: 429, limit: 'agent-pace' })
  }, 60_000)
})
