// An aggregated server that says `notifications/tools/list_changed` over and over (a loop, a bug,
// or on purpose): each one made the gateway ask the server for its whole tool list again, all at
// once, and tell every agent session its tools had changed — 200 notifications in a burst were 200
// tools/list requests to the server and 200 notifications to each session, each agent then listing
// its tools again. The refreshes are coalesced: one runs at a time, and a burst during it makes one more.
import { once } from 'node:events'
import { createServer, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server, WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/server'
import type { Client } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { answerWith } from '../helpers/mcp-servers.ts'
import { waitFor } from '../helpers/wait.ts'

const BURST = 200

let http: HttpServer
let lists = 0
/** Settled once the burst has been sent: a listing asked for meanwhile waits for it, so every notification but the first lands during one refresh. */
let burstSent: Promise<void> = Promise.resolve()
let setup: McpTestSetup
let agent: Client

beforeAll(async () => {
  // Stateless, answers in SSE: the call's notifications travel on its answer's stream.
  http = createServer(async (req, res) => {
    const mcp = new Server({ name: 'noisy', version: '1' }, { capabilities: { tools: { listChanged: true } } })
    mcp.setRequestHandler('tools/list', async () => {
      lists++
      await burstSent
      return { tools: [{ name: 'storm', inputSchema: { type: 'object' } }] }
    })
    mcp.setRequestHandler('tools/call', async (_request, ctx) => {
      let sent = () => {}
      burstSent = new Promise((resolve) => (sent = resolve))
      for (let i = 0; i < BURST; i++) await ctx.mcpReq.notify({ method: 'notifications/tools/list_changed' })
      sent()
      return { content: [{ type: 'text', text: 'storm done' }] }
    })
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: false })
    await mcp.connect(transport)
    await answerWith(transport, req, res, { stream: true })
  })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  setup = await startMcpTestGateway('mcp-probe-list-changed-storm', (config) => ({
    ...config,
    mcp: { ...config.mcp, servers: [{ name: 'noisy', url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp` }] },
  }))
  agent = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
}, 60_000)

afterAll(async () => {
  await agent?.close()
  await setup?.close()
  http?.closeAllConnections()
  http?.close()
})

it('a burst of tools/list_changed from a server is at most two refreshes of its list and two notifications to a session, not one each', async () => {
  let told = 0
  agent.setNotificationHandler('notifications/tools/list_changed', () => {
    told++
  })
  expect((await agent.listTools()).tools.map((t) => t.name)).toContain('noisy__storm')
  const before = lists
  expect(await agent.callTool({ name: 'noisy__storm', arguments: {} })).toMatchObject({ content: [{ type: 'text', text: 'storm done' }] })
  // The burst has been answered once the session has been told, and the lists asked for have come.
  await waitFor(() => told > 0, 'notifications/tools/list_changed in the session', 15_000)
  await waitFor(async () => (await agent.listTools()).tools.length > 0 && lists - before > 0, 'the list refreshed', 15_000)
  await agent.listTools() // one more round trip: a refresh still running shows by now
  expect(lists - before, `${lists - before} tools/list requests to the server for ${BURST} notifications`).toBeLessThanOrEqual(2)
  expect(told, `${told} notifications to the session for ${BURST} from the server`).toBeLessThanOrEqual(2)
}, 60_000)
