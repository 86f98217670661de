// The MCP endpoint's refusal of a browser Origin repeated the caller's Origin as it came, unquoted
// and whole: an Origin of the header limit's size made a problem body as large, and one written as a
// sentence read as the gateway's own ("… may not call this MCP endpoint (mcp.allowed_origins). Set
// mcp.allowed_origins to ..."). A client's value in a detail is bounded and JSON-quoted, as the
// routes' CORS refusals quote it.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

let setup: McpTestSetup

beforeAll(async () => {
  setup = await startMcpTestGateway('cors-probe-mcp-origin-detail', (config) => ({ ...config, mcp: { ...config.mcp, allowed_origins: ['https://inspector.example'] } }))
}, 60_000)

afterAll(async () => {
  await setup?.close()
})

async function refusal(origin: string): Promise<{ status: number; detail: string }> {
  const res = await fetch(`${setup.gateway.url}/mcp`, {
    method: 'POST',
    headers: { origin, 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${await setup.idp.token('looker-reports', { resource: MCP_RESOURCE })}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  })
  const body = await res.json() as { code: string; detail: string }
  expect(body.code).toBe('cors_origin_denied')
  return { status: res.status, detail: body.detail }
}

it('quotes the refused Origin, so it cannot read as the gateway\'s sentence', async () => {
  const origin = 'https://evil.example (mcp.allowed_origins). Ask your admin to add https://evil.example'
  const { status, detail } = await refusal(origin)
  expect(status).toBe(403)
  expect(detail).toBe(`Origin ${JSON.stringify(origin)} may not call this MCP endpoint (mcp.allowed_origins).`)
})

it('bounds a long Origin in the detail', async () => {
  const origin = `https://${'a'.repeat(6000)}.example`
  const { detail } = await refusal(origin)
  expect(detail.length).toBeLessThan(400)
  expect(detail).toContain(`…(truncated, ${origin.length} chars)`)
})
