// An approvals store (mcp.approvals_store) the gateway cannot use (here a file that is no SQLite
// database; a disk gone read-only or another instance holding its lock alike): every approvals
// endpoint answered a bare 500 "The gateway failed to handle this request", and so did GET
// /api/catalog, so the console's whole Catalog page (routes × roles, issuers, limits) was gone for
// want of one panel (found by the admin probe). The endpoints now say what the store said (its path
// and why, as the MCP endpoint does), and the catalog answers with the rest, the approvals' failure in
// approvals_error.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

const ADMIN = 'adm2-approvals-store-admin-token-0123456789'
let setup: McpTestSetup

async function api(path: string, init: { method?: 'GET' | 'POST'; body?: unknown } = {}) {
  const res = await request(`${setup.gateway.adminUrl}/api/${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  })
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
}

beforeAll(async () => {
  setup = await startMcpTestGateway('adm2-approvals-store', (config, dir) => ({
    ...config,
    admin: { token: ADMIN },
    mcp: { ...config.mcp, approvals_store: { type: 'sqlite', path: join(dir, 'approvals.db') }, approvals: [{ tools: ['list_customers'], approvers: ['agent'], ttl: '15m' }] },
  }))
  // Opened at first use: a file that is no database by then.
  await writeFile(join(setup.dir, 'approvals.db'), 'not a database '.repeat(100))
})

afterAll(async () => setup?.close())

it('the approvals endpoints say what the store said, not a bare internal error', async () => {
  const approver = await setup.idp.token('analytics-agent')
  for (const [path, init] of [['approvals', {}], ['approvals/0f0e', {}], ['approvals/0f0e/approve', { method: 'POST', body: { token: approver } }]] as const) {
    const answer = await api(path, init)
    expect(answer.status, path).toBe(500)
    expect(answer.body.detail, path).toMatch(/approvals store .*approvals\.db.*file is not a database/)
  }
})

it('the catalog answers with the rest, and says why the approvals are missing', async () => {
  const catalog = await api('catalog')
  expect(catalog.status, JSON.stringify(catalog.body)).toBe(200)
  expect(catalog.body.routes).toHaveLength(2)
  expect(catalog.body.approvals).toBeNull()
  expect(catalog.body.approvals_error).toMatch(/approvals store .*approvals\.db.*file is not a database/)
})
