// Found by an adversarial probe (helper): the MCP endpoint took the gateway's exchanged tokens
// whatever token_exchange.audiences listed, and a reload decided an exchanged token's notification
// stream by its issuer alone. (1) A reload that dropped mcp.resource from token_exchange.audiences
// (the operator stops agents reaching the endpoint for users) left the tokens issued for it served
// up to their lifetime, and their streams open. (2) A reload that moved mcp.resource refused a new
// request with such a token (audience_mismatch) but kept the stream it had opened, where README
// says a stream ends when mcp.resource is no longer its token's audience. (3) explain --tool, which
// decides a token as the endpoint does, took them as well.
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchanged } from '../helpers/exchange.ts'
import { auditRows, connect, MCP_RESOURCE, mcpTestConfig, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { waitFor } from '../helpers/wait.ts'

const ISSUER = 'https://mcp.bouncer.test'
const MOVED = 'https://mcp.bouncer.test/v2/mcp'
const ADMIN = 'exchange-probe-mcp-reload-admin-0123456789'

let setup: McpTestSetup

const exchangeFor = (audiences: string[]) => ({ issuer: ISSUER, audiences, actors: [{ role: 'agent', delegated_roles: ['reporter'] }] })
const config = (audiences: string[], resource = MCP_RESOURCE) => ({
  ...mcpTestConfig(setup.idp.issuer, setup.upstream.url, setup.dir, { resource }),
  admin: { token: ADMIN },
  token_exchange: exchangeFor(audiences),
})

beforeAll(async () => {
  setup = await startMcpTestGateway('exchange-probe-mcp-reload', (base) => ({ ...base, admin: { token: ADMIN }, token_exchange: exchangeFor([ISSUER, MCP_RESOURCE, MOVED]) }))
}, 90_000)

afterAll(() => setup?.close())

async function exchangedForMcp(): Promise<string> {
  const { idp, gateway } = setup
  return exchanged(gateway.url, { subject: await idp.token('looker-reports'), actor: await idp.token('analytics-agent'), resource: MCP_RESOURCE })
}

async function listTools(token: string): Promise<{ status: number; code?: string }> {
  const res = await request(`${setup.gateway.url}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  })
  const text = await res.body.text()
  return { status: res.statusCode, code: res.statusCode === 200 ? undefined : (JSON.parse(text) as { code: string }).code }
}

const settlesWithin = (promise: Promise<unknown>, ms: number) => Promise.race([promise.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))])

async function streamRecord(note: string): Promise<Record<string, unknown>> {
  const db = join(setup.dir, 'audit.db')
  const where = `detail = '${note.replaceAll("'", "''")}'`
  await waitFor(() => auditRows(db, where).length === 1, 'the stream\'s record')
  return auditRows(db, where)[0] as Record<string, unknown>
}

/** Puts `next` in force, and the starting config back afterwards. */
async function reloadTo(next: Record<string, unknown>): Promise<void> {
  await setup.gateway.writeConfig(next)
  expect((await setup.gateway.reload()).ok).toBe(true)
}

it('a reload that drops mcp.resource from token_exchange.audiences refuses the tokens issued for it, and ends their streams', async () => {
  await reloadTo(config([ISSUER, MCP_RESOURCE, MOVED]))
  const token = await exchangedForMcp()
  expect(await listTools(token)).toEqual({ status: 200 })
  const client = await connect(`${setup.gateway.url}/mcp`, token, '2026-07-28')
  try {
    const listening = await client.listen({ toolsListChanged: true })
    await reloadTo(config([ISSUER]))
    // Before: 200, and the stream stayed open.
    expect(await listTools(token)).toEqual({ status: 401, code: 'issuer_unknown' })
    // explain --tool decides it as the endpoint does (before: allowed).
    const res = await request(`${setup.gateway.adminUrl}/api/explain`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ tool: 'get_daily_report', token }),
    })
    expect(res.statusCode).toBe(200)
    expect(((await res.body.json()) as { decision: unknown }).decision).toMatchObject({ effect: 'deny', status: 401, code: 'issuer_unknown' })
    expect(await settlesWithin(listening.closed, 5_000)).toBe(true)
    const note = `After a config reload, token_exchange.audiences no longer lists ${MCP_RESOURCE}: the gateway no longer accepts its exchanged tokens here: the gateway closed the MCP notification stream.`
    expect(await streamRecord(note)).toMatchObject({ status: 200, subject: 'looker-reports', actor: 'analytics-agent', credential: 'exchanged' })
  } finally {
    await client.close()
  }
}, 60_000)

it('a reload that moves mcp.resource ends the streams of the tokens exchanged for the one before', async () => {
  await reloadTo(config([ISSUER, MCP_RESOURCE, MOVED]))
  const token = await exchangedForMcp()
  const client = await connect(`${setup.gateway.url}/mcp`, token, '2026-07-28')
  try {
    const listening = await client.listen({ toolsListChanged: true })
    await reloadTo(config([ISSUER, MCP_RESOURCE, MOVED], MOVED))
    expect(await listTools(token)).toEqual({ status: 401, code: 'audience_mismatch' })
    // Before: the stream stayed open.
    expect(await settlesWithin(listening.closed, 5_000)).toBe(true)
    const note = `After a config reload, the token is for ${MCP_RESOURCE}, not ${MOVED} (mcp.resource): the gateway closed the MCP notification stream.`
    expect(await streamRecord(note)).toMatchObject({ status: 200, subject: 'looker-reports', actor: 'analytics-agent', credential: 'exchanged' })
  } finally {
    await client.close()
  }
}, 60_000)
