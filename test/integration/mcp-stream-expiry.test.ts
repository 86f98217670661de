// Found by an adversarial probe (helper): a 2025-era session's notification (GET) stream, opened with
// a token that then expired, kept delivering (tools/list_changed after a reload removed the
// caller's role): every POST is authenticated again, the stream was not. It now ends at the expiry.
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { MCP_RESOURCE, type McpTestSetup, startMcpTestGateway } from '../helpers/mcp.ts'

let setup: McpTestSetup
let idp: TestIdentityProvider
let gateway: TestGateway

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-stream-expiry', (config) => {
    ;(config.issuers[0] as Record<string, unknown>).clock_tolerance = '0s' // the token's exp is its end
    return config
  })
  ;({ idp, gateway } = setup)
}, 60_000)

afterAll(() => setup?.close())

const VERSION = '2025-11-25'

it('a session\'s notification stream ends when the token that opened it expires', async () => {
  const expiresAt = Math.floor(Date.now() / 1000) + 3
  const token = await idp.mint({ sub: 'looker-reports', aud: MCP_RESOURCE, exp: expiresAt })
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': VERSION }
  const init = await fetch(`${gateway.url}/mcp`, {
    method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'stream', version: '1' } } }),
  })
  expect(init.status).toBe(200)
  await init.text()
  const session = init.headers.get('mcp-session-id') as string
  const initialized = await fetch(`${gateway.url}/mcp`, { method: 'POST', headers: { ...headers, 'mcp-session-id': session }, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' })
  await initialized.text()
  const stream = await fetch(`${gateway.url}/mcp`, { headers: { ...headers, accept: 'text/event-stream', 'mcp-session-id': session } })
  expect(stream.status).toBe(200)
  // Before: the stream stayed open (and delivered) for as long as the session lived.
  const reader = (stream.body as ReadableStream<Uint8Array>).getReader()
  while (!(await reader.read()).done) { /* notifications, if any */ }
  expect(Date.now()).toBeGreaterThanOrEqual(expiresAt * 1000 - 50)
  // The session itself lives on: a request with a fresh token is answered.
  const fresh = await idp.mint({ sub: 'looker-reports', aud: MCP_RESOURCE, exp: Math.floor(Date.now() / 1000) + 300 })
  const ping = await fetch(`${gateway.url}/mcp`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${fresh}`, 'mcp-session-id': session }, body: '{"jsonrpc":"2.0","id":2,"method":"ping"}' })
  expect(ping.status).toBe(200)
  await ping.text()
}, 30_000)
