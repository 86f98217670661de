// An aggregated MCP server that accepts connections and never answers (hung, or behind a proxy that
// holds requests) costs its timeout once, not at every request: every tools/list waited it out
// again, and so did every call to another server's tools (the catalog listed all servers to find
// one tool), so one silent server made the whole endpoint as slow as its timeout.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { startChangingServer, type ChangingMcpServer } from '../helpers/mcp-servers.ts'

const SILENT_TIMEOUT_MS = 4_000

let silent: Server
let tickets: ChangingMcpServer
let setup: McpTestSetup

beforeAll(async () => {
  silent = createServer(() => {}) // takes every request, answers none
  silent.listen(0, '127.0.0.1')
  await once(silent, 'listening')
  tickets = await startChangingServer()
  const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/mcp`
  setup = await startMcpTestGateway('mcp-silent-server', (config) => ({
    ...config,
    mcp: { ...config.mcp, servers: [{ name: 'silent', url: silentUrl, timeout: `${SILENT_TIMEOUT_MS}ms` }, { name: 'tickets', url: tickets.url }] },
  }))
}, 60_000)

afterAll(async () => {
  await setup?.close()
  await tickets?.close()
  silent?.closeAllConnections()
  silent?.close()
})

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now()
  const value = await work()
  return { value, ms: performance.now() - started }
}

it('calls another server\'s tool without waiting for the silent one, and lists without waiting for it again', async () => {
  const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  try {
    const call = await timed(() => client.callTool({ name: 'tickets__alpha', arguments: {} }))
    expect(call.value.content).toEqual([{ type: 'text', text: 'alpha done' }])
    expect(call.ms).toBeLessThan(SILENT_TIMEOUT_MS / 2)

    // The first list waits for the silent server's timeout (it might have answered); the next ones do not.
    const first = await timed(() => client.listTools({}, { timeout: 30_000 }))
    expect(first.value.tools.map((tool) => tool.name)).toContain('tickets__alpha')
    for (let i = 0; i < 2; i++) {
      const again = await timed(() => client.listTools({}, { timeout: 30_000 }))
      expect(again.value.tools.map((tool) => tool.name)).toEqual(first.value.tools.map((tool) => tool.name))
      expect(again.ms).toBeLessThan(SILENT_TIMEOUT_MS / 2)
    }
  } finally {
    await client.close()
  }
}, 60_000)
