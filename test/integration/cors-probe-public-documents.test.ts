// The gateway's public documents (the MCP endpoint's protected-resource metadata, the token
// exchange's authorization server metadata and its JWKS) say Access-Control-Allow-Origin: *, so a
// browser-based MCP client can read them. But that client sends MCP-Protocol-Version with them (the
// MCP SDK does), which makes the browser ask first: the preflight got 405 method_not_allowed with
// no CORS headers, so the browser refused the fetch (the SDK retries without the header; a client
// that does not fails discovery). The preflight is now granted, for GET and HEAD, credentials never;
// the token endpoint stays without CORS.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AGENT_FOR_REPORTER, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

const PAGE = 'https://inspector.example'
const DOCUMENTS = ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-authorization-server', '/oauth2/jwks']
let setup: McpTestSetup

beforeAll(async () => {
  setup = await startMcpTestGateway('cors-probe-public-documents', (config) => ({ ...config, token_exchange: AGENT_FOR_REPORTER }))
}, 60_000)

afterAll(async () => {
  await setup?.close()
})

async function send(method: string, path: string, headers: Record<string, string>) {
  const res = await request(`${setup.gateway.url}${path}`, { method: method as 'GET', headers })
  await res.body.dump()
  return { status: res.statusCode, headers: res.headers }
}

describe('a public document', () => {
  it('grants a browser client\'s preflight (MCP-Protocol-Version), to any origin, without credentials', async () => {
    for (const path of DOCUMENTS) {
      const res = await send('OPTIONS', path, { origin: PAGE, 'access-control-request-method': 'GET', 'access-control-request-headers': 'mcp-protocol-version' })
      expect(res.status, path).toBe(204)
      expect(res.headers['access-control-allow-origin'], path).toBe('*')
      expect(res.headers['access-control-allow-headers'], path).toContain('mcp-protocol-version')
      expect(res.headers['access-control-allow-methods'], path).toContain('GET')
      expect(res.headers, path).not.toHaveProperty('access-control-allow-credentials')
    }
  })

  it('is read by the page that asked, as before', async () => {
    for (const path of DOCUMENTS) {
      const res = await send('GET', path, { origin: PAGE, 'mcp-protocol-version': '2025-11-25' })
      expect(res.status, path).toBe(200)
      expect(res.headers['access-control-allow-origin'], path).toBe('*')
    }
  })

  it('grants nothing else: another method, or an OPTIONS that is no preflight', async () => {
    const post = await send('OPTIONS', DOCUMENTS[0] as string, { origin: PAGE, 'access-control-request-method': 'POST' })
    expect(post.status).toBe(403)
    expect(post.headers).not.toHaveProperty('access-control-allow-methods')
    expect((await send('OPTIONS', DOCUMENTS[0] as string, {})).status).toBe(405)
  })

  it('the token endpoint stays without CORS', async () => {
    const res = await send('OPTIONS', '/oauth2/token', { origin: PAGE, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' })
    expect(res.headers).not.toHaveProperty('access-control-allow-origin')
  })
})
