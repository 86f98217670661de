// A browser-based MCP client on an origin in mcp.allowed_origins, speaking MCP 2026-07-28: the SDK
// sends Mcp-Method and Mcp-Name with each request (derived from the message, SEP-2243), which the
// browser names in its preflight. The endpoint's CORS granted only the 2025-era headers, so every
// preflight was refused (403 "may not send the "mcp-method" header") and the client could not
// connect at all. Here the real SDK client runs behind a fetch that does what a browser does: it
// sends the preflight the browser would send (the non-safelisted header names), fails the request
// as a browser does when the grant or the answer's Access-Control-Allow-Origin is missing, and adds
// the page's Origin, and lets the page read only the answer headers a browser would.
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

const INSPECTOR = 'https://inspector.example'
let setup: McpTestSetup

beforeAll(async () => {
  setup = await startMcpTestGateway('cors-probe-mcp-browser-headers', (config) => ({ ...config, mcp: { ...config.mcp, allowed_origins: [INSPECTOR] } }))
}, 60_000)

afterAll(async () => {
  await setup?.close()
})

/** Request headers a page may send without a preflight (Fetch §4.6, for the values an MCP client sends). */
const SAFELISTED = new Set(['accept', 'accept-language', 'content-language'])
const SIMPLE_TYPES = new Set(['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain'])

/** What a refused preflight's page sees: no answer, a TypeError. Collected so the test can say which. */
const refusals: string[] = []

/** fetch as a page on `origin` makes it: CORS preflight first when one is needed, Origin on the request, the answer kept from the page without a grant. */
function browserFetch(origin: string): typeof fetch {
  return async (input, init) => {
    const url = input instanceof Request ? input.url : String(input)
    const method = init?.method ?? 'GET'
    const headers = new Headers(init?.headers)
    const unsafe = [...headers.keys()].filter((name) => !SAFELISTED.has(name) && !(name === 'content-type' && SIMPLE_TYPES.has((headers.get(name) ?? '').split(';')[0] as string))).sort()
    if (unsafe.length > 0 || !['GET', 'HEAD', 'POST'].includes(method)) {
      const preflight = await fetch(url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': method, ...(unsafe.length > 0 ? { 'access-control-request-headers': unsafe.join(',') } : {}) } })
      const detail = await preflight.text()
      const allowed = (preflight.headers.get('access-control-allow-headers') ?? '').split(',').map((h) => h.trim())
      if (!preflight.ok || preflight.headers.get('access-control-allow-origin') !== origin || unsafe.some((name) => !allowed.includes(name))) {
        refusals.push(`${method} preflight ${preflight.status}: ${detail}`)
        throw new TypeError('Failed to fetch')
      }
    }
    headers.set('origin', origin)
    const res = await fetch(url, { ...init, method, headers })
    if (res.headers.get('access-control-allow-origin') !== origin) {
      refusals.push(`${method} ${res.status} without Access-Control-Allow-Origin`)
      throw new TypeError('Failed to fetch')
    }
    // The page reads the safelisted answer headers and those exposed, nothing else.
    const exposed = new Set([...SAFELISTED_ANSWER, ...(res.headers.get('access-control-expose-headers') ?? '').split(',').map((h) => h.trim().toLowerCase())])
    const readable = new Headers()
    res.headers.forEach((value, name) => exposed.has(name) && readable.set(name, value))
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers: readable })
  }
}

/** Answer headers every page reads (Fetch §3.2.2, CORS-safelisted response-header names). */
const SAFELISTED_ANSWER = ['cache-control', 'content-language', 'content-length', 'content-type', 'expires', 'last-modified', 'pragma']

it('a 2026-07-28 browser client on an allowed origin connects and lists the tools', async () => {
  const token = await setup.idp.token('looker-reports', { resource: MCP_RESOURCE })
  const client = new Client({ name: 'browser', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } })
  const transport = new StreamableHTTPClientTransport(new URL(`${setup.gateway.url}/mcp`), { fetch: browserFetch(INSPECTOR), requestInit: { headers: { authorization: `Bearer ${token}` } } })
  try {
    await client.connect(transport)
    const { tools } = await client.listTools()
    expect(tools.map((tool) => tool.name)).toContain('get_daily_report')
  } catch (err) {
    throw new Error(`${(err as Error).message}; the browser saw: ${refusals.join(' | ')}`, { cause: err })
  } finally {
    await client.close().catch(() => {})
  }
  expect(refusals).toEqual([])
})

it('a 2025-11-25 browser client connects as before', async () => {
  const token = await setup.idp.token('looker-reports', { resource: MCP_RESOURCE })
  const client = new Client({ name: 'browser', version: '1' }, { supportedProtocolVersions: ['2025-11-25'] })
  const transport = new StreamableHTTPClientTransport(new URL(`${setup.gateway.url}/mcp`), { fetch: browserFetch(INSPECTOR), requestInit: { headers: { authorization: `Bearer ${token}` } } })
  try {
    await client.connect(transport)
    expect((await client.listTools()).tools.length).toBeGreaterThan(0)
  } finally {
    await client.close().catch(() => {})
  }
})
