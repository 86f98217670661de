// The transparent mode (one server, prefix: false) passes resources, prompts, completions and log
// levels through to callers allowed `call` on mcp:resources, mcp:prompts… A tool call is audited as
// `mcp:<tool>`, allowed or refused; these were not audited at all: an agent refused a resource read
// ("Not allowed: mcp:resources") left only the MCP request's own record, `allow` 200, so a search for
// denials never found it, and a resource read that was allowed named nothing of what was read.
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { startEverything, type RunningMcpServer } from '../helpers/mcp-servers.ts'
import { waitFor } from '../helpers/wait.ts'

let everything: RunningMcpServer
let setup: McpTestSetup

beforeAll(async () => {
  everything = await startEverything()
  setup = await startMcpTestGateway('mcp-probe-pass-through-audit', (config) => ({
    ...config,
    mcp: { ...config.mcp, servers: [{ name: 'everything', url: everything.url, prefix: false }] },
  }))
}, 60_000)

afterAll(async () => {
  await setup?.close()
  await everything?.close()
})

it('audits a passed-through request the caller may not make as a denial, and one it may as allowed', async () => {
  // The agent holds call on two tools only; the reporter holds mcp:*.
  const agent = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('analytics-agent', { resource: MCP_RESOURCE }), '2025-11-25')
  const reporter = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  try {
    await expect(agent.listResources()).rejects.toThrow(/Not allowed: mcp:resources/)
    expect((await reporter.listResources()).resources.length).toBeGreaterThan(0)
  } finally {
    await agent.close()
    await reporter.close()
  }
  const db = join(setup.dir, 'audit.db')
  await waitFor(() => auditRows(db, "route = 'mcp:resources'").length >= 2, 'the records of the two resources/list requests', 10_000)
  const [denied, allowed] = [auditRows(db, "route = 'mcp:resources' AND decision = 'deny'"), auditRows(db, "route = 'mcp:resources' AND decision = 'allow'")]
  expect(denied).toHaveLength(1)
  expect(denied[0]).toMatchObject({ subject: 'analytics-agent', status: 403, code: 'policy_denied', tool: 'resources' })
  expect(String(denied[0]?.detail)).toContain('resources/list')
  expect(allowed).toHaveLength(1)
  expect(allowed[0]).toMatchObject({ subject: 'looker-reports', status: 200, code: null, upstream: 'mcp:everything', statement: 'ReporterTools' })
}, 60_000)
