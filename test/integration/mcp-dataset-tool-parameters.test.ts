// A dataset route as an MCP tool takes the dataset's parameters (docs/datasets.md "An agent tool"):
// its input schema listed none and refused every argument as unknown, so a dataset with a required
// parameter answered 400 invalid_parameter to every call an agent could make.
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

let setup: McpTestSetup
let idp: TestIdentityProvider
let gateway: TestGateway

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-dataset', (config, dir) => {
    const db = new DatabaseSync(join(dir, 'warehouse.db'))
    db.exec("CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT, total REAL); INSERT INTO orders (region, total) VALUES ('eu', 10), ('us', 20), ('eu', 30), ('eu', 40)")
    db.close()
    config.routes.push({
      id: 'datasets.orders', methods: ['GET'], path: '/datasets/orders',
      dataset: {
        source: 'warehouse', page_size: 2,
        sql: 'SELECT id, region, total FROM orders WHERE region = :region AND total >= :min_total ORDER BY id',
        params: { region: { type: 'enum', enum: ['eu', 'us'], required: true }, min_total: { type: 'number', default: 0 } },
      },
    } as never)
    config.policies[1]!.statements.push({ sid: 'ReporterOrders', effect: 'allow', actions: ['GET'], routes: ['datasets.orders'] })
    return { ...config, mcp: { ...config.mcp, tools: [{ route: 'datasets.orders', name: 'get_orders' }] }, datasources: [{ name: 'warehouse', type: 'sqlite', path: join(dir, 'warehouse.db') }] }
  })
  ;({ idp, gateway } = setup)
}, 60_000)

afterAll(() => setup?.close())

it('lists a dataset tool with the dataset\'s parameters and runs it with them, page by page', async () => {
  const client = await connect(`${gateway.url}/mcp`, await idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  try {
    const [tool] = (await client.listTools()).tools
    expect(tool!.inputSchema).toMatchObject({
      required: ['region'],
      properties: { region: { type: 'string', enum: ['eu', 'us'] }, min_total: { type: 'number' }, cursor: { type: 'string' } },
    })
    const first = await client.callTool({ name: 'get_orders', arguments: { region: 'eu', min_total: 15 } })
    expect(first.isError).toBe(false)
    const page = first.structuredContent as { rows: Array<{ id: number }>; next: string | null }
    expect(page.rows.map((row) => row.id)).toEqual([3, 4])
    const all = await client.callTool({ name: 'get_orders', arguments: { region: 'eu' } })
    const one = all.structuredContent as { rows: Array<{ id: number }>; next: string }
    expect(one.rows.map((row) => row.id)).toEqual([1, 3])
    const two = await client.callTool({ name: 'get_orders', arguments: { region: 'eu', cursor: one.next } })
    expect((two.structuredContent as { rows: Array<{ id: number }> }).rows.map((row) => row.id)).toEqual([4])
    // The dataset still judges the values: one outside the enum is its 400, as over HTTP.
    const refused = await client.callTool({ name: 'get_orders', arguments: { region: 'apac' } })
    expect(refused.isError).toBe(true)
    expect(JSON.stringify(refused.content)).toContain('invalid_parameter')
  } finally {
    await client.close()
  }
}, 60_000)
