// A browser-based MCP client on an origin in mcp.allowed_origins can use the endpoint: its CORS
// preflight (which carries no token) is answered, and every answer carries the CORS headers, the
// 401's challenge and the session's id readable. The preflight got 401 and no answer had
// Access-Control-Allow-Origin, so allowed_origins let no browser in at all.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

const INSPECTOR = 'https://inspector.example'
let setup: McpTestSetup

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-browser-origins', (config) => ({ ...config, mcp: { ...config.mcp, allowed_origins: [INSPECTOR] } }))
}, 60_000)

afterAll(async () => {
  await setup?.close()
})

const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'browser', version: '1' } } })

function post(origin: string, token?: string): Promise<Response> {
  return fetch(`${setup.gateway.url}/mcp`, {
    method: 'POST',
    headers: { origin, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: INITIALIZE,
  })
}

it('answers an allowed origin\'s preflight and puts the CORS headers on its answers, the 401 included', async () => {
  const preflight = await fetch(`${setup.gateway.url}/mcp`, {
    method: 'OPTIONS',
    headers: { origin: INSPECTOR, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, mcp-protocol-version' },
  })
  expect(preflight.status).toBe(204)
  expect(preflight.headers.get('access-control-allow-origin')).toBe(INSPECTOR)
  expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization')

  const unauthenticated = await post(INSPECTOR)
  expect(unauthenticated.status).toBe(401)
  expect(unauthenticated.headers.get('access-control-allow-origin')).toBe(INSPECTOR)
  expect(unauthenticated.headers.get('access-control-expose-headers')).toContain('www-authenticate')

  const opened = await post(INSPECTOR, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }))
  await opened.text()
  expect(opened.status).toBe(200)
  expect(opened.headers.get('access-control-allow-origin')).toBe(INSPECTOR)
  expect(opened.headers.get('access-control-expose-headers')).toContain('mcp-session-id')
  expect(opened.headers.get('mcp-session-id')).toBeTruthy()
})

it('still refuses an origin that is not allowed, preflight or not', async () => {
  const preflight = await fetch(`${setup.gateway.url}/mcp`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
  expect(preflight.status).toBe(403)
  expect(preflight.headers.get('access-control-allow-origin')).toBeNull()
  // The setting that would let it in (a review: it named routes[].cors.origins, which /mcp has not).
  expect((await preflight.json() as { detail: string }).detail).toContain('(mcp.allowed_origins)')
  const refused = await post('https://evil.example', await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }))
  expect(refused.status).toBe(403)
  expect((await refused.json() as { code: string }).code).toBe('cors_origin_denied')
})
