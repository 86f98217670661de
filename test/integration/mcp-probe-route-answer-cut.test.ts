// A route tool whose upstream dies in the middle of its answer (the head sent, the body cut): the
// route's record says upstream_error, but the agent got a JSON-RPC internal error whose whole
// message was "aborted", not the 502 upstream_error a route answers when its upstream fails before
// answering — nothing told the agent (or its user) that the route's upstream had failed.
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let setup: McpTestSetup
let cutting: TestUpstream

beforeAll(async () => {
  // Its head promises 1,000 bytes; it sends 11, then its connection goes.
  cutting = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
    res.write('{"partial":', () => res.socket?.destroy())
  })
  setup = await startMcpTestGateway('mcp-probe-route-answer-cut', (config) => ({ ...config, upstreams: [{ name: 'sales-api', url: cutting.url }] }))
}, 60_000)

afterAll(async () => {
  await setup?.close()
  await cutting?.close()
})

it('answers a route tool whose upstream cut its answer short with a tool error naming upstream_error and the route request\'s id', async () => {
  const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  let result
  try {
    result = await client.callTool({ name: 'get_daily_report', arguments: { region: 'eu' } }).catch((err: Error) => err)
  } finally {
    await client.close()
  }
  expect(result).not.toBeInstanceOf(Error)
  expect(result).toMatchObject({ isError: true })
  const problem = JSON.parse((result as { content: Array<{ text: string }> }).content[0]?.text ?? '') as Record<string, unknown>
  expect(problem).toMatchObject({ status: 502, code: 'upstream_error' })
  const db = join(setup.dir, 'audit.db')
  await waitFor(() => auditRows(db, "route = 'sales.daily'").length === 1, 'the route request\'s record', 10_000)
  expect(auditRows(db, "route = 'sales.daily'")[0]).toMatchObject({ tool: 'get_daily_report', code: 'upstream_error', request_id: problem.request_id })
}, 60_000)
