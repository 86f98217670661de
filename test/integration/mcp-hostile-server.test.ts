// An aggregated MCP server is a third party's: what it lists reaches every agent, and its schemas
// are run by the gateway. Found by a probe: tool names with spaces, control characters or 10 KB
// were offered to agents as they came; a `pattern` in a tool's schema that backtracks without end
// (`(a+)+$`) held the gateway's event loop for as long as it ran (36 s for 27 a's, minutes for 30).
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Client } from '@modelcontextprotocol/client'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { startListedToolsServer, type ListedToolsServer } from '../helpers/mcp-servers.ts'
import { waitFor } from '../helpers/wait.ts'

/** Names MCP does not allow (1-128 letters, digits, _ - .), the last only once prefixed `odd__`. */
const HOSTILE_NAMES = ['has space', 'bell\u0007ring', 'x'.repeat(10_000), '', 'y'.repeat(125)]
/** `(a+)+$` against this many a's and a `!` backtracks 2^n steps: seconds unbounded, on any machine more than the 100 ms limit. */
const BACKTRACKING = `${'a'.repeat(27)}!`
const BACKTRACKS = { type: 'string', pattern: '(a+)+$' } as const

/** Two alternatives that each recurse into the same value: a check of a value n deep runs 2^n times (no pattern in it). */
const RECURSES = {
  type: 'object',
  properties: { q: { $ref: '#/$defs/n' } },
  $defs: { n: { anyOf: [{ type: 'array', items: { $ref: '#/$defs/n' }, contains: { const: 'never' } }, { type: 'array', items: { $ref: '#/$defs/n' } }, { type: 'string' }] } },
} as const
const nested = (depth: number): unknown => (depth === 0 ? 'x' : [nested(depth - 1)])

let odd: ListedToolsServer
/** Its tool list never ends, each page a little under its timeout: 64 pages (the SDK's most) took a minute. */
let paging: ListedToolsServer
/** Lists no tool (`quiet`'s list), and answers the notification stream (GET) with one event that never ends. */
let quiet: ListedToolsServer
let flooding: { server: Server; url: string; sent: number; cut: boolean }
/** What the flooding server writes of its one event, unless the gateway goes first: far past max_body_bytes (1 MB here). */
const FLOOD_BYTES = 64 * 1024 * 1024
let setup: McpTestSetup
let client: Client

beforeAll(async () => {
  odd = await startListedToolsServer([
    { name: 'good_tool', inputSchema: { type: 'object' } },
    ...HOSTILE_NAMES.map((name) => ({ name, inputSchema: { type: 'object' as const } })),
    { name: 'search', inputSchema: { type: 'object', properties: { q: BACKTRACKS } } },
    { name: 'report', inputSchema: { type: 'object' }, outputSchema: { type: 'object', properties: { code: BACKTRACKS } } },
    { name: 'tag', inputSchema: { type: 'object', properties: { ids: { type: 'array', uniqueItems: true } } } },
    { name: 'nest', inputSchema: RECURSES },
    { name: 'tree', inputSchema: { type: 'object' }, outputSchema: RECURSES },
  ], (name) => ({
    content: [{ type: 'text', text: `${name} done` }],
    ...(name === 'report' ? { structuredContent: { code: BACKTRACKING } } : name === 'tree' ? { structuredContent: { q: nested(26) } } : {}),
  }))
  paging = await startListedToolsServer([{ name: 'page', inputSchema: { type: 'object' } }], undefined, { endless: true, delayMs: 300 })
  quiet = await startListedToolsServer([])
  flooding = await floodingServer(quiet.url)
  setup = await startMcpTestGateway('mcp-hostile-server', (config) => ({
    ...config,
    server: { max_body_bytes: 1_048_576 },
    // A gated call's arguments are checked against the schema the server listed (tool-schema.ts).
    mcp: { ...config.mcp, servers: [{ name: 'odd', url: odd.url }, { name: 'paging', url: paging.url, timeout: '1s' }, { name: 'flooding', url: flooding.url }], approvals: [{ tools: ['odd__search', 'odd__tag', 'odd__nest'], approvers: ['agent'], ttl: '15m' }] },
  }))
  client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
}, 60_000)

afterAll(async () => {
  await client?.close()
  await setup?.close()
  await odd?.close()
  await paging?.close()
  flooding?.server.closeAllConnections()
  flooding?.server.close()
  await quiet?.close()
})

// Found by a review: a server's tool list was read page after page, each page bounded by the
// server's timeout but the list not at all, so a server naming a next page a little under its
// timeout held every agent's tools/list for up to 64 of them (the SDK's most): a minute here, an hour
// at the default 60 s.
it('bounds a server\'s whole tool list by its timeout: one that pages on is not listed, and tools/list answers', async () => {
  const started = performance.now()
  const names = (await client.listTools()).tools.map((tool) => tool.name)
  expect(performance.now() - started).toBeLessThan(4_000)
  expect(names).toContain('odd__good_tool')
  expect(names.filter((name) => name.startsWith('paging__'))).toEqual([])
  expect(setup.gateway.logs.join('\n')).toMatch(/"server":"paging".*its tool list took longer than its timeout/)
})

it('skips a server\'s tools whose names MCP does not allow, and says which in a warning', async () => {
  expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(['get_daily_report', 'list_customers', 'odd__good_tool', 'odd__search', 'odd__report', 'odd__tag', 'odd__nest', 'odd__tree'])
  await expect(client.callTool({ name: 'odd__has space', arguments: {} })).rejects.toThrow(/Unknown tool/)
  expect(odd.calls).toEqual([])
  const warnings = setup.gateway.logs.filter((line) => line.includes('MCP server tool skipped'))
  expect(warnings.length).toBeGreaterThanOrEqual(HOSTILE_NAMES.length)
  expect(warnings.join('\n')).toContain('"server":"odd"')
  expect(warnings.join('\n')).toContain('has space')
  // The warning names the tool, bounded: not 10 KB of it.
  expect(Math.max(...warnings.map((line) => line.length))).toBeLessThan(1_000)
})

describe('a server\'s schema patterns', () => {
  it('are checked under a time limit: a gated call whose pattern backtracks without end is refused, and its schema from then on', async () => {
    const started = performance.now()
    await expect(client.callTool({ name: 'odd__search', arguments: { q: BACKTRACKING } })).rejects.toThrow(/Invalid arguments for tool odd__search: its schema took longer than 100 ms to check/)
    expect(performance.now() - started).toBeLessThan(3_000)
    // Not run again: even an ordinary value is refused at once, as the schema cannot be trusted to check in time.
    const again = performance.now()
    await expect(client.callTool({ name: 'odd__search', arguments: { q: 'aaa' } })).rejects.toThrow(/took longer than 100 ms/)
    expect(performance.now() - again).toBeLessThan(1_000)
    expect(odd.calls).toEqual([])
  })

  it('bound the check of a server\'s structured answer against the tool\'s outputSchema too', async () => {
    const started = performance.now()
    await expect(client.callTool({ name: 'odd__report', arguments: {} })).rejects.toThrow(/took longer than 100 ms to check/)
    expect(performance.now() - started).toBeLessThan(3_000)
  })
})

// Found by a review: Ajv checks uniqueItems on objects by comparing every item with every other, so
// 10,000 small objects (120 KB) held the gateway's event loop for 7 s, a body of max_body_bytes hours.
it('bounds uniqueItems too: a gated call with an array too long to check in time is refused, and that array alone', async () => {
  const ids = Array.from({ length: 12_000 }, (_, i) => ({ id: i }))
  const started = performance.now()
  await expect(client.callTool({ name: 'odd__tag', arguments: { ids } })).rejects.toThrow(/Invalid arguments for tool odd__tag: .*uniqueItems compares every item/)
  expect(performance.now() - started).toBeLessThan(3_000)
  // The array's size was at fault, not the schema: a short one is checked and its call held for approval.
  const held = await client.callTool({ name: 'odd__tag', arguments: { ids: [{ id: 1 }, { id: 2 }] } })
  expect(JSON.stringify(held.content)).toMatch(/pending/i)
  expect(odd.calls).not.toContain('tag')
})

// Found by a review: a schema that recurses through a reference into the same value twice checks it
// 2^depth times — 26 deep took 8 s of the event loop, 40 most of an hour — and has no pattern, so
// neither a gated call's arguments nor a server's own structured answer was bounded.
describe('a server\'s recursive schemas', () => {
  it('bound a gated call\'s arguments: one nested too deep to check in time is refused, a shallow one held for approval', async () => {
    const started = performance.now()
    await expect(client.callTool({ name: 'odd__nest', arguments: { q: nested(26) } })).rejects.toThrow(/Invalid arguments for tool odd__nest: its schema took longer than 100 ms to check this value/)
    expect(performance.now() - started).toBeLessThan(3_000)
    const held = await client.callTool({ name: 'odd__nest', arguments: { q: nested(2) } })
    expect(JSON.stringify(held.content)).toMatch(/pending/i)
    expect(odd.calls).not.toContain('nest')
  })

  it('bound the check of a server\'s structured answer against its outputSchema', async () => {
    const started = performance.now()
    await expect(client.callTool({ name: 'odd__tree', arguments: {} })).rejects.toThrow(/took longer than 100 ms to check/)
    expect(performance.now() - started).toBeLessThan(3_000)
  })
})

/** POSTs passed on to `mcpUrl` (a real MCP server); a GET answered with an SSE event written until the gateway cuts it. */
async function floodingServer(mcpUrl: string): Promise<{ server: Server; url: string; sent: number; cut: boolean }> {
  const state = { sent: 0, cut: false }
  const server = createServer(async (req, res) => {
    if (req.method !== 'GET') {
      const body: Buffer[] = []
      for await (const chunk of req) body.push(chunk as Buffer)
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string' && name !== 'host' && name !== 'content-length') headers[name] = value
      const answer = await fetch(mcpUrl, { method: req.method, headers, ...(body.length > 0 ? { body: Buffer.concat(body) } : {}) })
      const out: Record<string, string> = {}
      answer.headers.forEach((value, name) => (out[name] = value))
      res.writeHead(answer.status, out)
      return void res.end(Buffer.from(await answer.arrayBuffer()))
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
    res.on('close', () => (state.cut = state.sent < FLOOD_BYTES))
    const chunk = Buffer.alloc(64 * 1024, 'a')
    res.write('data: ')
    while (state.sent < FLOOD_BYTES && !res.destroyed) {
      state.sent += chunk.length
      if (!res.write(chunk)) await once(res, 'drain').catch(() => {})
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return Object.assign(state, { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp` })
}

// Found by a review: a server's answers to requests were bounded by max_body_bytes, but its
// notification stream (the GET the SDK opens once connected) was left unbounded, and the SDK holds an
// event until its end: one event that never ended grew the gateway's memory by as much as the server sent.
it('cuts a server\'s notification stream at an event past max_body_bytes', async () => {
  await client.listTools() // the gateway has connected to every server by now
  await waitFor(() => flooding.cut || flooding.sent >= FLOOD_BYTES, 'the flood cut, or written whole', 20_000)
  expect(flooding.cut).toBe(true)
  expect(flooding.sent).toBeLessThan(FLOOD_BYTES / 2)
}, 30_000)
