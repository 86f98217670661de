// `tools/list` with a cursor the gateway never issued: it lists every tool in one page (no
// nextCursor), so any cursor is forged or stale (one a server behind it gave the agent directly,
// one from before a restart). It was ignored, and the whole list answered as if it were the next
// page: a client appending pages got every tool twice. MCP's pagination says an invalid cursor is
// refused with -32602 (Invalid params), for 2025-era sessions and 2026-07-28 requests alike.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

let setup: McpTestSetup

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp4-forged-cursor')
}, 60_000)

afterAll(() => setup?.close())

it.each(['2025-11-25', '2026-07-28'])('refuses a tools/list cursor it never issued (%s), and still lists without one', async (version) => {
  const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('analytics-agent', { resource: MCP_RESOURCE }), version)
  try {
    const first = await client.listTools()
    expect(first.tools.map((tool) => tool.name).sort()).toEqual(['get_daily_report'])
    expect(first.nextCursor).toBeUndefined()
    await expect(client.listTools({ cursor: 'eyJwYWdlIjogMn0=' })).rejects.toMatchObject({ code: -32602, message: expect.stringContaining('Invalid cursor') })
    await expect(client.listTools({ cursor: '' })).rejects.toMatchObject({ code: -32602 })
    expect((await client.listTools()).tools).toHaveLength(1)
  } finally {
    await client.close()
  }
}, 30_000)
