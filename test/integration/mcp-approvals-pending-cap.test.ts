// A caller holds at most MAX_PENDING_PER_CALLER pending approvals. A route tool's held calls count
// against its route's limits, an aggregated server's tool's against nothing: a looping agent filed
// approvals without end (300 in a few seconds), each one more for the approvers to read.
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { MAX_PENDING_PER_CALLER } from '../../src/agents/mcp/approvals.ts'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { startChangingServer, type ChangingMcpServer } from '../helpers/mcp-servers.ts'
import { waitFor } from '../helpers/wait.ts'

let tickets: ChangingMcpServer
let setup: McpTestSetup

beforeAll(async () => {
  tickets = await startChangingServer()
  setup = await startMcpTestGateway('mcp-approvals-pending-cap', (config) => ({
    ...config,
    mcp: { ...config.mcp, servers: [{ name: 'tickets', url: tickets.url }], approvals: [{ tools: ['tickets__alpha'], approvers: ['agent'], ttl: '15m' }] },
  }))
}, 60_000)

afterAll(async () => {
  await setup?.close()
  await tickets?.close()
})

it('files at most MAX_PENDING_PER_CALLER pending approvals for one caller, then refuses with quota_exceeded', async () => {
  const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  try {
    const ids: string[] = []
    for (let i = 0; i < MAX_PENDING_PER_CALLER; i++) {
      const held = await client.callTool({ name: 'tickets__alpha', arguments: { attempt: i } })
      expect(held.structuredContent).toMatchObject({ status: 'pending_approval' })
      ids.push((held.structuredContent as { approval_id: string }).approval_id)
    }
    const beyond = await client.callTool({ name: 'tickets__alpha', arguments: { attempt: MAX_PENDING_PER_CALLER } })
    expect(beyond.isError).toBe(true)
    expect(JSON.stringify(beyond.content)).toContain('quota_exceeded')
    // The same call as one already pending still gets that approval.
    const again = await client.callTool({ name: 'tickets__alpha', arguments: { attempt: 0 } })
    expect(again.structuredContent).toMatchObject({ status: 'pending_approval', approval_id: ids[0] })
  } finally {
    await client.close()
  }
  const db = join(setup.dir, 'audit.db')
  await waitFor(() => auditRows(db, "code = 'quota_exceeded'").length === 1, 'the refusal\'s record', 10_000)
  expect(auditRows(db, "code = 'quota_exceeded'")[0]).toMatchObject({ tool: 'tickets__alpha', status: 429, subject: 'looker-reports' })
}, 120_000)
