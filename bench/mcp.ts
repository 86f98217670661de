// MCP (issue 19): what a tool call costs through the gateway.
//
// - a route-backed tool's `tools/call` per second, against the same route over plain HTTP (the
//   target: at least 70%). Both run the whole pipeline (token, policy, forward); the MCP side adds
//   the JSON-RPC exchange (the SDK's per-request server) and the in-process request.
// - aggregation: `tools/call` of server-everything's `echo` through the gateway, against calling
//   server-everything directly (its own session), both Streamable HTTP.
//
// Each 2025-06-18 `tools/call` is one stateless POST (the gateway serves that era statelessly), so
// wrk sends the same request over and over, like the HTTP case.
//
// node bench/mcp.ts [--duration S] [--connections N]   (npm run bench runs it too, unless --skip mcp)
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startBouncer, startUpstream } from './cases.ts'
import { BENCH_AUDIENCE, startBenchIssuer } from './lib/issuer.ts'
import { HAS_WRK, parseWrk, type LoadResult } from './lib/load.ts'
import { cpuMicros, LOAD_CORE, pinned, startProcess, type Started } from './lib/processes.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const MCP_RESOURCE = 'https://bench.bouncer.test/mcp'
const VERSION = '2025-06-18'

export interface McpBenchOptions {
  durationSec: number
  connections: number
}

export interface McpRow {
  id: string
  title: string
  result: (LoadResult & { cpuMicrosPerRequest: number }) | null
  skipped?: string
}

interface Post {
  url: string
  body?: string
  headers: Record<string, string>
}

/** wrk with a Lua script for a POST (bench/lib/load.ts's runner sends GETs). */
async function wrk(pid: number, request: Post, options: McpBenchOptions, dir: string): Promise<LoadResult & { cpuMicrosPerRequest: number }> {
  const script = join(dir, `req-${Math.random().toString(36).slice(2)}.lua`)
  const lines = [`wrk.method = ${request.body === undefined ? '"GET"' : '"POST"'}`]
  if (request.body !== undefined) lines.push(`wrk.body = ${JSON.stringify(request.body)}`)
  for (const [name, value] of Object.entries(request.headers)) lines.push(`wrk.headers[${JSON.stringify(name)}] = ${JSON.stringify(value)}`)
  await writeFile(script, `${lines.join('\n')}\n`)
  const [command, argv] = pinned(LOAD_CORE, 'wrk', ['-t1', `-c${options.connections}`, `-d${options.durationSec}s`, '--latency', '-s', script, request.url])
  const before = cpuMicros(pid)
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  if (code !== 0) throw new Error(`wrk failed (${code}):\n${output}`)
  const result = parseWrk(output)
  return { ...result, cpuMicrosPerRequest: result.requests > 0 ? (cpuMicros(pid) - before) / result.requests : 0 }
}

async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address() as AddressInfo
  probe.close()
  await once(probe, 'close')
  return port
}

const call = (id: number, name: string, args: Record<string, unknown>) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } })

async function check(request: Post, expect: string): Promise<void> {
  const res = await fetch(request.url, { method: request.body === undefined ? 'GET' : 'POST', headers: request.headers, body: request.body })
  const text = await res.text()
  if (res.status !== 200 || !text.includes(expect)) throw new Error(`${request.url} answered ${res.status}: ${text.slice(0, 300)}`)
}

export async function benchMcp(options: McpBenchOptions): Promise<McpRow[]> {
  if (!HAS_WRK) return [{ id: 'mcp', title: 'MCP', result: null, skipped: 'needs wrk (POST bodies)' }]
  const dir = await mkdtemp(join(tmpdir(), 'bouncer-bench-mcp-'))
  const started: Started[] = []
  try {
    const upstream = await startUpstream()
    started.push(upstream)
    const issuer = await startBenchIssuer()
    const everythingPort = await freePort()
    const everything = await startProcess(process.execPath, [join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js'), 'streamableHttp'], /listening on port/, { env: { PORT: String(everythingPort) }, core: null })
    started.push(everything)
    const everythingUrl = `http://127.0.0.1:${everythingPort}/mcp`
    const gateway = await startBouncer({
      issuers: [{ name: 'bench', issuer: issuer.issuer, audiences: [BENCH_AUDIENCE], algorithms: ['ES256'] }],
      roles: [{ name: 'bench', assumed_by: [{ issuer: 'bench' }], policies: ['all'] }],
      policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
      upstreams: [{ name: 'api', url: `http://127.0.0.1:${upstream.port}` }],
      routes: [{ id: 'items', methods: ['GET'], path: '/items/:id', upstream: 'api' }],
      audit: { sinks: [] },
      mcp: { resource: MCP_RESOURCE, tools: [{ route: 'items', name: 'get_item' }], servers: [{ name: 'ev', url: everythingUrl }] },
    })
    started.push(gateway)
    const [token] = await issuer.mint(1, 'ES256', () => ({ sub: 'bench-agent', aud: [BENCH_AUDIENCE, MCP_RESOURCE] }))
    const auth = { authorization: `Bearer ${token}` }
    const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': VERSION }
    const http: Post = { url: `${gateway.url}/items/1`, headers: auth }
    const routeTool: Post = { url: `${gateway.url}/mcp`, headers: { ...auth, ...mcpHeaders }, body: call(1, 'get_item', { id: '1' }) }
    // The same call from a 2026-07-28 client: the per-request envelope, no session, no SSE unless needed.
    const modernMeta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} }
    const modernTool: Post = {
      url: `${gateway.url}/mcp`,
      headers: { ...auth, ...mcpHeaders, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'get_item' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_item', arguments: { id: '1' }, _meta: modernMeta } }),
    }
    const aggregated: Post = { url: `${gateway.url}/mcp`, headers: { ...auth, ...mcpHeaders }, body: call(1, 'ev__echo', { message: 'hi' }) }
    // server-everything directly: one session, opened as its clients do.
    const init = await fetch(everythingUrl, { method: 'POST', headers: mcpHeaders, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'bench', version: '1' } } }) })
    const session = init.headers.get('mcp-session-id') ?? ''
    await init.text()
    await fetch(everythingUrl, { method: 'POST', headers: { ...mcpHeaders, 'mcp-session-id': session }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) }).then((r) => r.text())
    const direct: Post = { url: everythingUrl, headers: { ...mcpHeaders, 'mcp-session-id': session }, body: call(1, 'echo', { message: 'hi' }) }

    await check(http, 'region')
    await check(routeTool, 'region')
    await check(modernTool, 'region')
    await check(aggregated, 'Echo: hi')
    await check(direct, 'Echo: hi')
    const gw = gateway.child.pid as number
    const ev = everything.child.pid as number
    const rows: McpRow[] = []
    for (const [id, title, pid, request] of [
      ['mcp-http', 'the route over HTTP (GET /items/1)', gw, http],
      ['mcp-route-tool', 'the same route as an MCP tool (tools/call get_item, 2025-06-18)', gw, routeTool],
      ['mcp-route-tool-2026', 'the same tool call from a 2026-07-28 client', gw, modernTool],
      ['mcp-direct', 'server-everything echo, directly', ev, direct],
      ['mcp-aggregated', 'server-everything echo through the gateway (ev__echo)', gw, aggregated],
    ] as const) {
      await wrk(pid, request, { ...options, durationSec: 1 }, dir) // warm-up
      rows.push({ id, title, result: await wrk(pid, request, options, dir) })
    }
    await issuer.close()
    return rows
  } finally {
    for (const s of started.reverse()) await s.stop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
}

export function mcpTable(rows: McpRow[]): string {
  const by = (id: string) => rows.find((r) => r.id === id)?.result
  const lines = ['| case | req/s | p50 ms | p99 ms | CPU µs/req (measured process) | errors |', '|---|---:|---:|---:|---:|---:|']
  for (const row of rows) {
    const r = row.result
    lines.push(r ? `| ${row.title} | ${Math.round(r.rps)} | ${r.p50ms.toFixed(2)} | ${r.p99ms.toFixed(2)} | ${Math.round(r.cpuMicrosPerRequest)} | ${r.errors} |` : `| ${row.title} | skipped: ${row.skipped ?? ''} | | | | |`)
  }
  const http = by('mcp-http')
  const tool = by('mcp-route-tool')
  const direct = by('mcp-direct')
  const aggregated = by('mcp-aggregated')
  const modern = by('mcp-route-tool-2026')
  if (http && tool) lines.push('', `Route tool / HTTP: ${(100 * tool.rps / http.rps).toFixed(0)}% of the requests per second for a 2025-06-18 client${modern ? `, ${(100 * modern.rps / http.rps).toFixed(0)}% for a 2026-07-28 one` : ''} (target ≥ 70%).`)
  if (direct && aggregated) lines.push(`Aggregation: ${(100 * aggregated.rps / direct.rps).toFixed(0)}% of server-everything's own req/s; p50 ${(aggregated.p50ms - direct.p50ms).toFixed(2)} ms added (the gateway's CPU ${Math.round(aggregated.cpuMicrosPerRequest)} µs per call).`)
  return lines.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { duration: { type: 'string', default: '5' }, connections: { type: 'string', default: '10' } } })
  const rows = await benchMcp({ durationSec: Number(values.duration), connections: Number(values.connections) })
  console.log(mcpTable(rows))
}
