// Found by an adversarial probe (helper): a token the gateway issued by token exchange for the MCP resource (aud mcp.resource, RFC 8707) was accepted on the plain HTTP routes, while the identity provider's own token for that resource is refused there.
import { request } from 'undici'
import { decodeJwt } from 'jose'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

const ISSUER = 'https://mcp.bouncer.test'
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token'

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
  const res = await request(`${setup.gateway.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: await setup.idp.token('looker-reports'), subject_token_type: ACCESS_TOKEN,
      actor_token: await setup.idp.token('analytics-agent'), actor_token_type: ACCESS_TOKEN,
      audience,
    }).toString(),
  })
  const body = (await res.body.json()) as { access_token: string }
  expect(res.statusCode, JSON.stringify(body)).toBe(200)
  expect(decodeJwt(body.access_token).aud).toBe(audience)
  return body.access_token
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
