// An approval authorises a call that runs. Found by a probe: it was spent the moment the call was
// let through, so a call then refused on its way (the route's rate limit, its upstream or its MCP
// server unreachable) had used it up without running, and the approver had to approve it again.
// It is now given back, usable until it expires, and the agent is told so.
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { Client } from '@modelcontextprotocol/client'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { closedPort } from '../helpers/faults.ts'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { startListedToolsServer, type ListedToolsServer } from '../helpers/mcp-servers.ts'

const ADMIN = 'approvals-unrun-admin-token-0123456789'

let downPort: number
let tickets: ListedToolsServer
let setup: McpTestSetup
let reporter: Client

beforeAll(async () => {
  downPort = await closedPort()
  tickets = await startListedToolsServer([{ name: 'close_ticket', inputSchema: { type: 'object' } }])
  setup = await startMcpTestGateway('mcp-approvals-unrun', (config) => {
    config.roles.push({ name: 'ops', assumed_by: [{ issuer: 'corp-sso', subject: 'no-tenant' }], policies: [] })
    const routes = config.routes as Array<Record<string, unknown>>
    // get_daily_report's route: two requests an hour (a held call is charged too); list_customers's upstream: down.
    routes[0]!.limits = ['hourly']
    routes[1]!.upstream = 'down-api'
    return {
      ...config,
      admin: { token: ADMIN },
      limits: [{ name: 'hourly', key: 'principal', rate: '2/h', burst: 2 }],
      upstreams: [...config.upstreams, { name: 'down-api', url: `http://127.0.0.1:${downPort}` }],
      mcp: {
        ...config.mcp,
        servers: [{ name: 'tickets', url: tickets.url }],
        approvals: [{ tools: ['get_daily_report', 'list_customers', 'tickets__*'], approvers: ['ops'], ttl: '15m' }],
      },
    }
  })
  reporter = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
}, 60_000)

afterAll(async () => {
  await reporter?.close()
  await setup?.close()
  await tickets?.close()
})

async function pending(name: string, args: Record<string, unknown>): Promise<string> {
  const held = await reporter.callTool({ name, arguments: args })
  expect(held.structuredContent, JSON.stringify(held.content)).toMatchObject({ status: 'pending_approval' })
  return (held.structuredContent as { approval_id: string }).approval_id
}

async function approve(id: string): Promise<void> {
  const res = await request(`${setup.gateway.adminUrl}/api/approvals/${id}/approve`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ token: await setup.idp.token('no-tenant') }),
  })
  expect(res.statusCode, await res.body.text()).toBe(200)
}

async function statusOf(id: string): Promise<string> {
  const res = await request(`${setup.gateway.adminUrl}/api/approvals/${id}`, { headers: { authorization: `Bearer ${ADMIN}` } })
  return ((await res.body.json()) as { status: string }).status
}

it('is not spent by a call its route\'s rate limit refuses', async () => {
  const id = await pending('get_daily_report', { region: 'eu' })
  await pending('get_daily_report', { region: 'us' }) // the hour's second request: the limit is reached
  await approve(id)
  const refused = await reporter.callTool({ name: 'get_daily_report', arguments: { region: 'eu' } })
  expect(refused.isError).toBe(true)
  const text = JSON.stringify(refused.content)
  expect(text).toContain('rate_limited')
  expect(text).toContain(`Approval ${id} was not used`)
  expect(await statusOf(id)).toBe('approved')
})

it('is not spent by a call whose upstream is down, and runs the call once it is back', async () => {
  const id = await pending('list_customers', {})
  await approve(id)
  const refused = await reporter.callTool({ name: 'list_customers', arguments: {} })
  expect(refused.isError).toBe(true)
  expect(JSON.stringify(refused.content)).toContain('upstream_unavailable')
  expect(await statusOf(id)).toBe('approved')
  const back = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"customers":[]}'))
  back.listen(downPort, '127.0.0.1')
  await once(back, 'listening')
  try {
    const ran = await reporter.callTool({ name: 'list_customers', arguments: {} })
    expect(ran.isError, JSON.stringify(ran.content)).toBe(false)
    expect(ran.structuredContent).toEqual({ customers: [] })
    expect(await statusOf(id)).toBe('used')
  } finally {
    back.closeAllConnections()
    back.close()
  }
})

it('is not spent by a call its MCP server never received', async () => {
  const id = await pending('tickets__close_ticket', {})
  await approve(id)
  await tickets.close()
  const refused = await reporter.callTool({ name: 'tickets__close_ticket', arguments: {} })
  expect(refused.isError).toBe(true)
  expect(JSON.stringify(refused.content)).toContain(`Approval ${id} was not used`)
  expect(tickets.calls).toEqual([])
  expect(await statusOf(id)).toBe('approved')
})
