// An agent's notification stream opened with a token the gateway exchanged for it (on behalf of a
// user): a reload that stops the exchange ends it, as the endpoint would refuse that token now; one
// that keeps the exchange keeps it. Before, a 2026-07-28 subscriptions/listen stream outlived any
// reload (mcp-stream-lifecycle.test.ts).
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchanged } from '../helpers/exchange.ts'
import { AGENT_FOR_REPORTER, auditRows, connect, MCP_RESOURCE, mcpTestConfig, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { waitFor } from '../helpers/wait.ts'

let setup: McpTestSetup

const config = (exchange: boolean) => ({ ...mcpTestConfig(setup.idp.issuer, setup.upstream.url, setup.dir), ...(exchange ? { token_exchange: AGENT_FOR_REPORTER } : {}) })

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-exchange-stream', (base) => ({ ...base, token_exchange: AGENT_FOR_REPORTER }))
}, 90_000)

afterAll(() => setup?.close())

async function exchangedForMcp(): Promise<string> {
  const { idp, gateway } = setup
  return exchanged(gateway.url, { subject: await idp.token('looker-reports'), actor: await idp.token('analytics-agent'), resource: MCP_RESOURCE })
}

const settlesWithin = (promise: Promise<unknown>, ms: number) => Promise.race([promise.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))])

it('a reload that stops the token exchange ends the streams its tokens opened; one that keeps it does not', async () => {
  const { gateway } = setup
  const client = await connect(`${gateway.url}/mcp`, await exchangedForMcp(), '2026-07-28')
  try {
    const listening = await client.listen({ toolsListChanged: true })
    // The same config again: the stream stays.
    await gateway.writeConfig(config(true))
    expect((await gateway.reload()).ok).toBe(true)
    expect(await settlesWithin(listening.closed, 500)).toBe(false)

    await gateway.writeConfig(config(false))
    expect((await gateway.reload()).ok).toBe(true)
    // Before: it stayed open.
    expect(await settlesWithin(listening.closed, 5_000)).toBe(true)
    const note = 'After a config reload, the gateway no longer accepts its own exchanged tokens here (token_exchange): the gateway closed the MCP notification stream.'
    const db = join(setup.dir, 'audit.db')
    await waitFor(() => auditRows(db, `detail = '${note.replaceAll("'", "''")}'`).length === 1, 'the stream\'s record')
    const [row] = auditRows(db, `detail = '${note.replaceAll("'", "''")}'`)
    expect(row).toMatchObject({ status: 200, subject: 'looker-reports', actor: 'analytics-agent', credential: 'exchanged' })
  } finally {
    await client.close()
  }
}, 60_000)
