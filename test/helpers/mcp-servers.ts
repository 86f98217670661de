// Real MCP servers for the gateway to aggregate: the reference "everything" server
// (@modelcontextprotocol/server-everything, Streamable HTTP, its own process), and a small server
// built with the official SDK whose tools a test can change (notifications/tools/list_changed).
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { Readable } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import { McpServer, ProtocolError, Server, WebStandardStreamableHTTPServerTransport, type CallToolResult, type Tool } from '@modelcontextprotocol/server'
import { closedPort } from './faults.ts'
import { waitForText } from './wait.ts'

export interface RunningMcpServer {
  url: string
  /** Headers of every request the server received. */
  requests: IncomingMessage['headers'][]
  close(): Promise<void>
}


/**
 * Hands a node:http request to an SDK transport (Web-standard Request and Response) and its answer
 * back: whole (`stream` false), or written as it comes (an SSE stream held open). `body`: the request
 * body where the caller has read it already; by default a POST's is streamed from `req`.
 */
export async function answerWith(transport: WebStandardStreamableHTTPServerTransport, req: IncomingMessage, res: ServerResponse, options: { body?: string; stream?: boolean } = {}): Promise<void> {
  const headers = new Headers()
  for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers.set(name, value)
  const body = req.method !== 'POST' ? {} : options.body !== undefined ? { body: options.body } : { body: Readable.toWeb(req) as ReadableStream, duplex: 'half' }
  const response = await transport.handleRequest(new Request(`http://127.0.0.1${req.url}`, { method: req.method, headers, ...body } as RequestInit))
  const out: Record<string, string> = {}
  response.headers.forEach((value, name) => (out[name] = value))
  res.writeHead(response.status, out)
  if (!options.stream) return void res.end(Buffer.from(await response.arrayBuffer()))
  if (!response.body) return void res.end()
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) res.write(chunk)
  } catch {
    // the stream was closed
  }
  res.end()
}

const EVERYTHING = fileURLToPath(new URL('../../node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url))

/** server-everything on Streamable HTTP (its own process, on a free port). */
export async function startEverything(): Promise<RunningMcpServer & { process: ChildProcess }> {
  for (let attempt = 0; ; attempt++) {
    const port = await closedPort()
    const child = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    try {
      await waitForText(() => stderr, /listening on port|already in use/, 30_000)
    } catch (err) {
      child.kill()
      throw err
    }
    if (stderr.includes('already in use') && attempt < 3) {
      child.kill()
      continue
    }
    return {
      url: `http://127.0.0.1:${port}/mcp`,
      requests: [],
      process: child,
      async close() {
        if (child.exitCode !== null) return
        child.kill()
        await once(child, 'exit')
      },
    }
  }
}

export interface ChangingMcpServer extends RunningMcpServer {
  /** Adds a tool to every session; connected clients are told the list changed. */
  addTool(name: string): void
  /** Notification streams (GET) a client holds open now. */
  openStreams(): number
  /** The tools whose calls the client cancelled while they ran (`notifications/cancelled`). */
  cancelled: string[]
}

/** A sessionful Streamable HTTP server (official SDK) with tools `alpha`, `slow` (which reports progress) and `endless` (which reports it until cancelled). */
export async function startChangingServer(): Promise<ChangingMcpServer> {
  const sessions = new Map<string, { transport: WebStandardStreamableHTTPServerTransport; server: McpServer }>()
  const extra: string[] = []
  const requests: IncomingMessage['headers'][] = []
  const cancelled: string[] = []
  const build = () => {
    const server = new McpServer({ name: 'changing', version: '1' }, { capabilities: { tools: { listChanged: true } } })
    server.registerTool('alpha', { description: 'the first tool' }, async () => ({ content: [{ type: 'text', text: 'alpha done' }] }))
    server.registerTool('slow', { description: 'reports progress' }, async (ctx) => {
      const token = ctx.mcpReq._meta?.progressToken
      if (token !== undefined) {
        for (let i = 1; i <= 3; i++) await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: 3 } })
      }
      return { content: [{ type: 'text', text: 'slow done' }] }
    })
    // Reports progress every 100 ms until the call is cancelled (at most 60 s, so a test that fails still ends).
    server.registerTool('endless', { description: 'reports progress until cancelled' }, async (ctx) => {
      const token = ctx.mcpReq._meta?.progressToken
      const started = Date.now()
      for (let i = 1; !ctx.mcpReq.signal.aborted && Date.now() - started < 60_000; i++) {
        if (token !== undefined) await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress: i } }).catch(() => {})
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      if (ctx.mcpReq.signal.aborted) cancelled.push('endless')
      return { content: [{ type: 'text', text: 'endless ended' }] }
    })
    for (const name of extra) server.registerTool(name, { description: `added ${name}` }, async () => ({ content: [{ type: 'text', text: `${name} done` }] }))
    return server
  }
  const sockets = new Set<Socket>()
  let streams = 0
  const http = createServer((req, res) => {
    if (req.method !== 'GET') return void handle(req, res)
    streams++
    res.on('close', () => streams--)
    void handle(req, res)
  })
  http.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    requests.push(req.headers)
    const id = req.headers['mcp-session-id'] as string | undefined
    let session = id === undefined ? undefined : sessions.get(id)
    if (!session) {
      const server = build()
      const transport: WebStandardStreamableHTTPServerTransport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => crypto.randomUUID(),
        onsessioninitialized: (sid) => void sessions.set(sid, { transport, server }),
      })
      await server.connect(transport)
      session = { transport, server }
    }
    await answerWith(session.transport, req, res, { stream: true })
  }
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  const { port } = http.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    requests,
    cancelled,
    addTool(name) {
      extra.push(name)
      for (const { server } of sessions.values()) server.registerTool(name, { description: `added ${name}` }, async () => ({ content: [{ type: 'text', text: `${name} done` }] }))
    },
    openStreams: () => streams,
    async close() {
      for (const { transport } of sessions.values()) await transport.close().catch(() => {})
      for (const socket of sockets) socket.destroy()
      http.close()
      await once(http, 'close').catch(() => {})
    },
  }
}

export interface ListedToolsServer extends RunningMcpServer {
  /** The tool calls it answered, by tool name. */
  calls: string[]
}

/**
 * A stateless MCP server (official SDK, JSON answers; with `json: false`, each in an SSE stream)
 * that lists exactly `tools` — names and schemas as a test writes them, however unlike a real
 * server's — and answers their calls with `answer` (default: a text naming the tool). `endless`:
 * each page of the list after `delayMs`, naming a next one for ever (a list that never ends);
 * default one page at once.
 */
export async function startListedToolsServer(
  tools: Tool[],
  answer: (name: string, args: Record<string, unknown>) => CallToolResult = (name) => ({ content: [{ type: 'text', text: `${name} done` }] }),
  options: { json?: boolean; endless?: boolean; delayMs?: number } = {},
): Promise<ListedToolsServer> {
  const pages = { endless: options.endless ?? false, delayMs: options.delayMs ?? 0 }
  const calls: string[] = []
  const http = createServer(async (req, res) => {
    const mcp = new Server({ name: 'listed', version: '1' }, { capabilities: { tools: {} } })
    mcp.setRequestHandler('tools/list', async (request) => {
      if (pages.delayMs > 0) await delay(pages.delayMs)
      return { tools, ...(pages.endless ? { nextCursor: String(Number(request.params?.cursor ?? 0) + 1) } : {}) }
    })
    mcp.setRequestHandler('tools/call', async (request) => {
      calls.push(request.params.name)
      return answer(request.params.name, (request.params.arguments ?? {}) as Record<string, unknown>)
    })
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: options.json ?? true })
    await mcp.connect(transport)
    await answerWith(transport, req, res)
  })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    requests: [],
    calls,
    async close() {
      if (!http.listening) return
      http.closeAllConnections()
      http.close()
      await once(http, 'close')
    },
  }
}

/** What a trace probe saw of one request: its tool (or method), its `_meta` and the HTTP headers of the POST that carried it. */
export interface SeenCall {
  tool: string
  meta: Record<string, unknown>
  headers: IncomingHttpHeaders
}

export interface TraceProbeServer extends RunningMcpServer {
  /** Each tools/call, resources/read and prompts/get, in arrival order. */
  seen: SeenCall[]
  port: number
}

/**
 * A stateless MCP server (the SDK's) noting the `_meta` and headers of each call, for the trace
 * context it was sent: tools `probe`, `broken` (a result with isError) and `failing` (a JSON-RPC
 * error, code -32001); a resource and a prompt (noted as `resources/read` and `prompts/get`), which
 * the transparent mode passes through.
 */
export async function startTraceProbeServer(): Promise<TraceProbeServer> {
  const seen: SeenCall[] = []
  const http = createServer(async (req, res) => {
    const mcp = new Server({ name: 'probe', version: '1' }, { capabilities: { tools: {}, resources: {}, prompts: {} } })
    mcp.setRequestHandler('resources/read', async (request) => {
      seen.push({ tool: 'resources/read', meta: { ...request.params._meta }, headers: req.headers })
      return { contents: [{ uri: request.params.uri, mimeType: 'text/plain', text: 'read' }] }
    })
    mcp.setRequestHandler('prompts/get', async (request) => {
      seen.push({ tool: 'prompts/get', meta: { ...request.params._meta }, headers: req.headers })
      return { messages: [{ role: 'user', content: { type: 'text', text: `prompt ${request.params.name}` } }] }
    })
    mcp.setRequestHandler('tools/list', async () => ({ tools: ['probe', 'broken', 'failing'].map((name) => ({ name, inputSchema: { type: 'object' as const } })) }))
    mcp.setRequestHandler('tools/call', async (request) => {
      seen.push({ tool: request.params.name, meta: { ...request.params._meta }, headers: req.headers })
      if (request.params.name === 'failing') throw new ProtocolError(-32001, 'the ticket store is read-only')
      return request.params.name === 'broken' ? { content: [{ type: 'text', text: 'no such ticket' }], isError: true } : { content: [{ type: 'text', text: 'probed' }] }
    })
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
    await mcp.connect(transport)
    await answerWith(transport, req, res)
  })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  const port = (http.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    port,
    requests: [],
    seen,
    async close() {
      if (!http.listening) return
      http.closeAllConnections()
      http.close()
      await once(http, 'close')
    },
  }
}
