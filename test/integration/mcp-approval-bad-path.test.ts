// A route tool held for approval was filed before its request met the pipeline: a call whose path
// parameter is `..` or `.` (or holds a slash) passed the tool's own checks, was filed, and an
// approver was asked to approve it; once approved, the pipeline refused it with bad_path (the MCP
// probe's left item). Such a call is refused as the pipeline would, before anything is filed.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import type { Client } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { waitFor } from '../helpers/wait.ts'

let setup: McpTestSetup
let reporter: Client

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-approval-bad-path', (config) => {
    config.roles.push({ name: 'ops', assumed_by: [{ issuer: 'corp-sso', subject: 'ops-oncall' }], policies: [] })
    return { ...config, mcp: { ...config.mcp, approvals: [{ tools: ['get_daily_report'], approvers: ['ops'] }] } }
  })
  reporter = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
}, 90_000)

afterAll(async () => {
  await reporter?.close()
  await setup?.close()
})

it('refuses a held tool call whose path the pipeline would refuse, filing no approval', async () => {
  for (const region of ['..', '.', 'a/b']) {
    const result = (await reporter.callTool({ name: 'get_daily_report', arguments: { region } })) as { isError?: boolean; content: Array<{ text: string }> }
    expect(result.isError, region).toBe(true)
    expect(JSON.parse(result.content[0]?.text ?? '{}'), region).toMatchObject({ status: 400, code: 'bad_path' })
  }
  expect(approvalsFiled()).toBe(0)
  const log = join(setup.dir, 'audit.db')
  await waitFor(() => auditRows(log, "code = 'bad_path'").length === 3, 'the three refusals\' records', 15_000)
  for (const row of auditRows(log, "code = 'bad_path'")) expect(row).toMatchObject({ tool: 'get_daily_report', subject: 'looker-reports', decision: 'deny', status: 400 })
  // A good path is held, as before.
  const held = (await reporter.callTool({ name: 'get_daily_report', arguments: { region: 'emea' } })) as { structuredContent?: { status: string } }
  expect(held.structuredContent?.status).toBe('pending_approval')
  expect(approvalsFiled()).toBe(1)
}, 60_000)

/** Rows in the approvals store (made at the first approval filed). */
function approvalsFiled(): number {
  const file = join(setup.dir, 'approvals.db')
  if (!existsSync(file)) return 0
  const db = new DatabaseSync(file, { readOnly: true })
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>
    return tables.reduce((sum, { name }) => sum + (db.prepare(`SELECT count(*) AS n FROM "${name}"`).get() as { n: number }).n, 0)
  } finally {
    db.close()
  }
}
