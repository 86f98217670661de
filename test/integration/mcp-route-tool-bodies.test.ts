// A route tool's answer, and the agent's request, through the in-process dispatch. Found by a
// probe: an answer of any size was held whole (200 MB took the gateway from 218 MB to 1.46 GB, and
// 600 MB ended in -32603 while the route's record said 200/allow); a large answer that filled the
// in-process connection left the route's request paused until its upstream closed the keep-alive
// connection (audited as upstream_error); an agent that left did not cancel the upstream request;
// and every /mcp record said bytes_in 0.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { mkdtemp, rm } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { Client } from '@modelcontextprotocol/client'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { auditRows, connect, MCP_RESOURCE, mcpTestConfig } from '../helpers/mcp.ts'
import { startRawUpstream, type RawUpstream } from '../helpers/raw-upstream.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, waitFor } from '../helpers/wait.ts'

/** server.max_body_bytes here: the most a tool's answer may be. */
const BOUND = 1_048_576
/** What the endless answer would send whole: far past the bound. */
const ENDLESS_BYTES = 16 * BOUND
/** A socket read's most (64 KiB), which is also the in-process connection's high-water mark. */
const READ_BYTES = 65_536
/**
 * The raw upstream's head. Its answer is two whole reads, written at once: the gateway's upstream
 * client reads it in two 64 KiB chunks (measured: 10 of 10), the last of which fills the in-process
 * connection alone, so the route's request waits for it to drain after the agent's side has the
 * whole answer. (14 reads stalled 5 times in 10: the kernel hands a long answer over in pieces.)
 */
const rawHead = (length: number) => `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${length}\r\n\r\n`
const LARGE_BYTES = 2 * READ_BYTES - rawHead(2 * READ_BYTES).length

interface Watched {
  started: { promise: Promise<void>; resolve: () => void }
  closed: { promise: Promise<void>; resolve: () => void }
  written: number
}

const watched = new Map<string, Watched>()
function watch(path: string): Watched {
  const entry = { started: deferred(), closed: deferred(), written: 0 }
  watched.set(path, entry)
  return entry
}

/** Writes `chunk` until `total` is sent or the gateway closes the request, taking backpressure. */
function pump(res: ServerResponse, entry: Watched, chunk: Buffer, total: number): void {
  while (!res.destroyed && entry.written < total) {
    entry.written += chunk.length
    if (!res.write(chunk)) {
      res.once('drain', () => pump(res, entry, chunk, total))
      return
    }
  }
  if (!res.destroyed) res.end()
}

let idp: TestIdentityProvider
let upstream: TestUpstream
/** Answers every request with the large answer, and never closes a connection itself. */
let raw: RawUpstream
const rawSockets: Socket[] = []
let gateway: TestGateway
let dir: string
let token: string
let agent: Client

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream((req, res) => {
    const entry = watched.get(req.url ?? '')
    if (!entry) {
      res.writeHead(404).end()
      return
    }
    entry.started.resolve()
    res.on('close', () => entry.closed.resolve())
    switch (req.url) {
      case '/sales/daily/endless':
        res.writeHead(200, { 'content-type': 'text/plain' })
        return pump(res, entry, Buffer.alloc(65_536, 'x'), ENDLESS_BYTES)
      case '/sales/daily/declared':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(2 * BOUND) })
        return pump(res, entry, Buffer.alloc(65_536, 'y'), 2 * BOUND)
      case '/sales/daily/silent':
        return // never answers
      case '/sales/daily/stream': {
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.write('first line\n')
        const timer = setInterval(() => res.write('one more line\n'), 20)
        res.on('close', () => clearInterval(timer))
        return
      }
    }
  })
  raw = await startRawUpstream((_head, socket) => {
    rawSockets.push(socket)
    // One write: the gateway reads it in whole 64 KiB chunks, the answer's last one included.
    socket.write(Buffer.concat([Buffer.from(rawHead(LARGE_BYTES)), Buffer.alloc(LARGE_BYTES, 'z')]))
  })
  dir = await mkdtemp(join(tmpdir(), 'bouncer-mcp-route-bodies-'))
  const config = mcpTestConfig(idp.issuer, upstream.url, dir, {
    tools: [
      { route: 'sales.daily', name: 'get_daily_report' },
      { route: 'sales.raw', name: 'get_raw_report' },
    ],
  }) as ReturnType<typeof mcpTestConfig> & { server?: object }
  // No answer held for a slow client: the route's request then waits for the in-process connection
  // to drain (response_buffer_bytes would take the raw answer's last chunk). A short drain: a route
  // request left hanging (the faults this file guards against) must not hold the shutdown.
  config.server = { max_body_bytes: BOUND, response_buffer_bytes: 0, shutdown_timeout: '2s' }
  config.upstreams.push({ name: 'raw-api', url: raw.url })
  config.routes.push({ id: 'sales.raw', methods: ['GET'], path: '/raw/report', upstream: 'raw-api' })
  gateway = await startTestGateway(config)
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'keys', 20_000)
  token = await idp.token('looker-reports', { resource: MCP_RESOURCE })
  agent = await connect(`${gateway.url}/mcp`, token, '2025-11-25')
}, 60_000)

afterAll(async () => {
  await agent?.close()
  await gateway?.close()
  await Promise.all([upstream?.close(), raw?.close(), idp?.stop()])
  await rm(dir, { recursive: true, force: true })
})

/** The route's own record of the tool's request to `path`, once the audit worker has written it. */
async function routeRecord(route: string, path: string): Promise<Record<string, unknown>> {
  let rows: Record<string, unknown>[] = []
  await waitFor(() => (rows = auditRows(join(dir, 'audit.db'), `route = '${route}' AND path = '${path}'`)).length > 0, `the record of ${path}`, 20_000)
  return rows[0] as Record<string, unknown>
}

const textOf = (result: Awaited<ReturnType<Client['callTool']>>) => (result.content as Array<{ text: string }>)[0]?.text ?? ''

const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' }

it('a large answer under the bound reaches the agent whole, is audited 200/allow, and frees its upstream connection at once', async () => {
  const result = await agent.callTool({ name: 'get_raw_report', arguments: {} })
  expect(result.isError).toBe(false)
  expect(textOf(result)).toBe('z'.repeat(LARGE_BYTES))
  // Before the fix the route's request waited for ever (this upstream never closes its connection).
  const record = await routeRecord('sales.raw', '/raw/report')
  expect(record).toMatchObject({ tool: 'get_raw_report', status: 200, decision: 'allow', code: null, detail: null, bytes_out: LARGE_BYTES })
  // The next call takes the same upstream connection: the first one was back in the pool.
  expect((await agent.callTool({ name: 'get_raw_report', arguments: {} })).isError).toBe(false)
  expect(rawSockets).toHaveLength(2)
  expect(rawSockets[1]).toBe(rawSockets[0])
}, 60_000)

it('an answer past max_body_bytes is cut off: the upstream request is aborted, the agent gets a tool error, the record says payload_too_large', async () => {
  const endless = watch('/sales/daily/endless')
  const result = await agent.callTool({ name: 'get_daily_report', arguments: { region: 'endless' } })
  expect(result.isError).toBe(true)
  expect(JSON.parse(textOf(result))).toMatchObject({ status: 413, code: 'payload_too_large', detail: expect.stringContaining(`${BOUND} bytes`) })
  await endless.closed.promise
  expect(endless.written).toBeLessThan(ENDLESS_BYTES)
  const record = await routeRecord('sales.daily', '/sales/daily/endless')
  expect(record).toMatchObject({ tool: 'get_daily_report', decision: 'error', code: 'payload_too_large', detail: expect.stringContaining(`${BOUND} bytes`) })
  // Read up to the bound, and what was in flight: not the whole answer.
  expect(record.bytes_out as number).toBeLessThan(4 * BOUND)

  // A length declared past the bound is refused at the head.
  const declared = watch('/sales/daily/declared')
  const refused = await agent.callTool({ name: 'get_daily_report', arguments: { region: 'declared' } })
  expect(refused.isError).toBe(true)
  expect(JSON.parse(textOf(refused))).toMatchObject({ status: 413, code: 'payload_too_large' })
  await declared.closed.promise
  expect(await routeRecord('sales.daily', '/sales/daily/declared')).toMatchObject({ decision: 'error', code: 'payload_too_large' })
}, 60_000)

it('an agent that cancels its call cancels the route\'s upstream request, and the record says 499', async () => {
  const silent = watch('/sales/daily/silent')
  const abandon = new AbortController()
  const call = agent.callTool({ name: 'get_daily_report', arguments: { region: 'silent' } }, { signal: abandon.signal, timeout: 30_000 })
  await silent.started.promise
  abandon.abort(new Error('the agent gave up'))
  await expect(call).rejects.toThrow('the agent gave up')
  await silent.closed.promise // the upstream saw its request closed: nothing waits for it any more
  expect(await routeRecord('sales.daily', '/sales/daily/silent')).toMatchObject({ tool: 'get_daily_report', status: 499, decision: 'allow', code: null, upstream_status: null })
}, 60_000)

it('an agent that hangs up its HTTP request mid-answer cancels the route\'s upstream request, and the record says 499', async () => {
  const stream = watch('/sales/daily/stream')
  const hangUp = new AbortController()
  const call = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'get_daily_report', arguments: { region: 'stream' } } })
  // undici publishes the upstream's head just before the gateway takes it, with the first line the
  // upstream sent alongside: once this has run, the route's answer has begun.
  const answering = new Promise<void>((resolve) => {
    const seen = (message: unknown) => {
      if ((message as { request: { path: string } }).request.path !== '/sales/daily/stream') return
      unsubscribe('undici:request:headers', seen)
      resolve()
    }
    subscribe('undici:request:headers', seen)
  })
  const res = await request(`${gateway.url}/mcp`, { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${token}` }, body: call, signal: hangUp.signal })
  res.body.on('error', () => {}) // the hang-up, below
  await answering
  hangUp.abort()
  await stream.closed.promise
  const record = await routeRecord('sales.daily', '/sales/daily/stream')
  // The tool's answer reaches its agent only whole: one cut short reached no one.
  expect(record).toMatchObject({ tool: 'get_daily_report', status: 499, decision: 'allow', code: null, detail: expect.stringContaining('agent') })
}, 60_000)

it('a /mcp record counts the request body in bytes_in', async () => {
  const message = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' })
  // Trailing white space is still one JSON message: 900 KB of it, under max_body_bytes.
  const body = message + ' '.repeat(900_000 - message.length)
  const res = await request(`${gateway.url}/mcp`, { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${token}`, 'x-request-id': 'mcp-bytes-in' }, body })
  expect(res.statusCode).toBe(200)
  await res.body.dump()
  let rows: Record<string, unknown>[] = []
  await waitFor(() => (rows = auditRows(join(dir, 'audit.db'), `request_id = 'mcp-bytes-in'`)).length > 0, 'the /mcp record', 20_000)
  expect(rows[0]).toMatchObject({ route: 'builtin/mcp', status: 200, bytes_in: 900_000 })
}, 60_000)

it('a /mcp body refused 413 records the bytes that came of it', async () => {
  // Chunked, so nothing declares the size and it is refused while it is read (bytes_in was 0).
  const chunk = Buffer.alloc(READ_BYTES, 0x20)
  const res = await request(`${gateway.url}/mcp`, {
    method: 'POST',
    headers: { ...mcpHeaders, authorization: `Bearer ${token}`, 'x-request-id': 'mcp-bytes-in-413' },
    body: Readable.from(Array.from({ length: 20 }, () => chunk)),
  }).catch(() => null) // the gateway may close before all of it is sent
  if (res) {
    expect(res.statusCode).toBe(413)
    await res.body.dump()
  }
  let rows: Record<string, unknown>[] = []
  await waitFor(() => (rows = auditRows(join(dir, 'audit.db'), `request_id = 'mcp-bytes-in-413'`)).length > 0, 'the /mcp record', 20_000)
  expect(rows[0]).toMatchObject({ route: 'builtin/mcp', status: 413, code: 'payload_too_large' })
  expect(rows[0]?.bytes_in).toBeGreaterThan(BOUND)
  expect(rows[0]?.bytes_in).toBeLessThanOrEqual(20 * READ_BYTES)
}, 60_000)
