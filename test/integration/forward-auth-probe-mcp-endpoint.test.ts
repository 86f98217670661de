// Found by an adversarial probe: the gateway's MCP endpoint (mcp.path) is a built-in route that
// authenticates its callers itself, so the stages treat it as public; described to forward-auth,
// a POST /mcp with no token at all was answered 200 "allowed" (and audited so), where the gateway
// answers it 401. A proxy protecting an MCP server at that path forwarded it unauthenticated.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let api: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  api = await startUpstream()
  gw = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.1/32'], forward_auth_peers: ['127.0.0.1/32'] },
    mcp: { path: '/mcp', resource: 'http://127.0.0.1/mcp', tools: [] },
    upstreams: [{ name: 'api', url: api.url, headers: { 'X-Api-Key': 'k-mcp' } }],
    routes: [{ id: 'docs', path: '/docs/*', upstream: 'api', public: true }],
  })
})

afterAll(async () => {
  await gw?.close()
  await api?.close()
})

describe('forward-auth asked about the MCP endpoint', () => {
  it('never allows it unchecked: 404, no route the proxy may forward it to', async () => {
    const own = await request(`${gw.url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' })
    expect(own.statusCode).toBe(401) // what the gateway itself answers without a token
    await own.body.dump()
    for (const headers of [
      { 'x-original-method': 'POST', 'x-original-uri': '/mcp' },
      { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/mcp?session=1', 'x-forwarded-host': 'api.example.com' },
    ]) {
      const res = await request(`${gw.url}/.bouncer/auth`, { headers })
      const text = await res.body.text()
      expect(res.statusCode, JSON.stringify(headers)).toBe(404)
      expect(JSON.parse(text)).toMatchObject({ code: 'route_not_found' })
      expect(JSON.parse(text).detail).toContain('builtin/mcp')
    }
    // Its public metadata document stays what it is on the gateway: public.
    const metadata = await request(`${gw.url}/.bouncer/auth`, { headers: { 'x-original-method': 'GET', 'x-original-uri': '/.well-known/oauth-protected-resource/mcp' } })
    expect(metadata.statusCode).toBe(200)
    await metadata.body.dump()
  })
})
