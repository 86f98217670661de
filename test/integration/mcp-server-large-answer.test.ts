// An aggregated MCP server's answer is bounded as a route tool's is (server.max_body_bytes): a
// server answering a call with 100 MB took the gateway from 270 MB to 900 MB of memory and handed
// the agent all of it. It is cut off past the bound, whether the server answers in JSON or in an
// SSE stream; the agent gets an error result and the record says payload_too_large.
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { startListedToolsServer, type ListedToolsServer } from '../helpers/mcp-servers.ts'
import { waitFor } from '../helpers/wait.ts'

const MAX_BODY_BYTES = 1024 * 1024

/** A stateless MCP server whose tool `sized` answers `bytes` characters, in JSON or in an SSE stream. */
function sizedServer(json: boolean): Promise<ListedToolsServer> {
  return startListedToolsServer([{ name: 'sized', inputSchema: { type: 'object', properties: { bytes: { type: 'integer' } } } }], (_name, args) => ({ content: [{ type: 'text', text: 'x'.repeat(Number(args.bytes)) }] }), { json })
}

let jsonServer: ListedToolsServer
let sseServer: ListedToolsServer
let setup: McpTestSetup

beforeAll(async () => {
  ;[jsonServer, sseServer] = await Promise.all([sizedServer(true), sizedServer(false)])
  setup = await startMcpTestGateway('mcp-server-large-answer', (config) => ({
    ...config,
    server: { max_body_bytes: MAX_BODY_BYTES },
    mcp: { ...config.mcp, servers: [{ name: 'json', url: jsonServer.url, timeout: '30s' }, { name: 'sse', url: sseServer.url, timeout: '30s' }] },
  }))
}, 60_000)

afterAll(async () => {
  await setup?.close()
  await Promise.all([jsonServer?.close(), sseServer?.close()])
})

it('cuts off a server\'s answer past server.max_body_bytes, and passes a smaller one on', async () => {
  const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  try {
    for (const name of ['json__sized', 'sse__sized']) {
      const small = await client.callTool({ name, arguments: { bytes: 1000 } })
      expect(small.content).toEqual([{ type: 'text', text: 'x'.repeat(1000) }])
      const large = await client.callTool({ name, arguments: { bytes: 3 * MAX_BODY_BYTES } }, { timeout: 20_000 })
      expect(large.isError).toBe(true)
      expect(JSON.stringify(large.content)).toContain('server.max_body_bytes')
    }
  } finally {
    await client.close()
  }
  const db = join(setup.dir, 'audit.db')
  await waitFor(() => auditRows(db, "code = 'payload_too_large'").length === 2, 'the records of the two cut answers', 10_000)
  expect(auditRows(db, "code = 'payload_too_large'").map((row) => [row.tool, row.status])).toEqual([['json__sized', 413], ['sse__sized', 413]])
}, 60_000)
