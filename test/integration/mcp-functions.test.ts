// A function route as an MCP tool: the call is the route's request, so the handler gets the
// payload 2.0 event a client's request would give it — with the body the tool sent, and without
// the agent's token.
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

const ECHO = fileURLToPath(new URL('../fixtures/functions/echo.ts', import.meta.url))
let setup: McpTestSetup
let idp: TestIdentityProvider
let gateway: TestGateway

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-fn', (config) => {
    config.routes.push({ id: 'orders.create', methods: ['POST'], path: '/orders/:region', function: 'echo' } as never)
    // The role needs the route itself for the tool's method (the tool is listed only then).
    config.policies[1]!.statements.push({ sid: 'ReporterOrders', effect: 'allow', actions: ['POST'], routes: ['orders.create'] })
    return { ...config, mcp: { ...config.mcp, tools: [{ route: 'orders.create', name: 'create_order' }] }, functions: [{ name: 'echo', module: ECHO, concurrency: 1 }] }
  })
  ;({ idp, gateway } = setup)
}, 60_000)

afterAll(() => setup?.close())

it('calls a function route as a tool: POST with the body, not read-only, the caller\'s token never in the event', async () => {
  const token = await idp.token('looker-reports', { resource: MCP_RESOURCE })
  const client = await connect(`${gateway.url}/mcp`, token, '2025-11-25')
  try {
    const [tool] = (await client.listTools()).tools
    expect(tool).toMatchObject({ name: 'create_order', annotations: { readOnlyHint: false, idempotentHint: false } })
    expect(tool!.inputSchema).toMatchObject({ required: ['region'], properties: { region: { type: 'string' }, body: {} } })
    const result = await client.callTool({ name: 'create_order', arguments: { region: 'eu', body: { sku: 'A-1', quantity: 2 } } })
    expect(result.isError).toBe(false)
    const event = (result.structuredContent as { event: { rawPath: string; body: string; requestContext: { http: { method: string } }; headers: Record<string, string> } }).event
    expect(event.rawPath).toBe('/orders/eu')
    expect(event.requestContext.http.method).toBe('POST')
    expect(JSON.parse(event.body)).toEqual({ sku: 'A-1', quantity: 2 })
    expect(JSON.stringify(event)).not.toContain(token)
  } finally {
    await client.close()
  }
}, 60_000)
