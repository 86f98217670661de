// Found by an adversarial probe (helper): a token the gateway issued by token exchange for the MCP resource (aud mcp.resource, RFC 8707) was accepted on the plain HTTP routes, while the identity provider's own token for that resource is refused there.
import { request } from 'undici'
import { decodeJwt } from 'jose'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { exchanged } from '../helpers/exchange.ts'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

const ISSUER = 'https://mcp.bouncer.test'

let setup: McpTestSetup

beforeAll(async () => {
  setup = await startMcpTestGateway('exchange-mcp-audience', (config) => ({
    ...config,
    // Tokens may be for the gateway itself or for its MCP endpoint.
    token_exchange: { issuer: ISSUER, audiences: [ISSUER, MCP_RESOURCE], actors: [{ role: 'agent', delegated_roles: ['reporter'] }] },
  }))
}, 90_000)

afterAll(async () => {
  await setup?.close()
})

/** looker-reports' token exchanged, with analytics-agent acting, for `audience`. */
async function exchangedFor(audience: string): Promise<string> {
  const token = await exchanged(setup.gateway.url, { subject: await setup.idp.token('looker-reports'), actor: await setup.idp.token('analytics-agent'), audience })
  expect(decodeJwt(token).aud).toBe(audience)
  return token
}

async function onRoute(token: string): Promise<{ status: number; code?: string }> {
  const res = await request(`${setup.gateway.url}/sales/daily/eu`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  return { status: res.statusCode, code: text.startsWith('{') ? (JSON.parse(text) as { code?: string }).code : undefined }
}

it('a token exchanged for the MCP resource is refused on the HTTP routes, as the identity provider\'s token for it is', async () => {
  expect(await onRoute(await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }))).toMatchObject({ status: 401, code: 'audience_mismatch' })
  expect(await onRoute(await exchangedFor(MCP_RESOURCE))).toMatchObject({ status: 401, code: 'audience_mismatch' })
})

it('a token exchanged for the gateway itself is accepted on its routes', async () => {
  expect(await onRoute(await exchangedFor(ISSUER))).toMatchObject({ status: 200 })
})

it('the MCP endpoint keeps taking the token exchanged for it', async () => {
  const client = await connect(`${setup.gateway.url}/mcp`, await exchangedFor(MCP_RESOURCE), '2025-11-25')
  try {
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['get_daily_report'])
  } finally {
    await client.close()
  }
})
