// The credentials the gateway sends an aggregated MCP server (mcp.servers[].headers) never reach
// the agent or the audit log, even when the server echoes them in an error answer: "backend refused
// credentials Bearer …" went into the agent's tool result (and its model's context) and into the
// record's detail as it was.
// Nor does a key given in a server's URL reach the log line that says the server is unavailable.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ProtocolError, Server as McpServer, WebStandardStreamableHTTPServerTransport, type ServerCapabilities } from '@modelcontextprotocol/server'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { upstreamMcpServer } from '../../src/agents/mcp/servers.ts'
import { createLogger } from '../../src/telemetry/logger.ts'
import { auditRows, connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { answerWith } from '../helpers/mcp-servers.ts'
import { waitFor } from '../helpers/wait.ts'

const TOKEN = 'tickets-credential-0123456789'
const API_KEY = 'tickets-api-key-9876543210'

/** The Authorization headers the echoing server was sent, in order. */
const authorizations: string[] = []
/** Answers the echoing server's `held` call, which waits for it (set while one waits). */
let releaseHeld: (() => void) | null = null

/** A stateless MCP server that lists `echo` and answers its call with a 500 repeating the credentials it was sent. */
async function echoingServer(): Promise<Server> {
  const server = createServer(async (req, res) => {
    authorizations.push(String(req.headers.authorization))
    let body = ''
    for await (const chunk of req) body += String(chunk)
    if (body.includes('"tools/call"') && body.includes('"leak"')) {
      // A JSON-RPC error whose data carries what it was sent: the SDK keeps `data` on its error.
      const { id } = JSON.parse(body) as { id: number }
      res.writeHead(200, { 'content-type': 'application/json' })
      return void res.end(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32001, message: `denied for ${req.headers['x-client-name']}`, data: { sent: [req.headers.authorization], key: req.headers['x-api-key'] } } }))
    }
    if (body.includes('"tools/call"') && body.includes('"sorry"')) {
      // MCP's own way to report a tool's failure: a result with isError, whose text the server wrote.
      const { id } = JSON.parse(body) as { id: number }
      res.writeHead(200, { 'content-type': 'application/json' })
      const text = `the ticket API refused ${req.headers.authorization} (key ${req.headers['x-api-key']}) for ${req.headers['x-client-name']}`
      // Nested deeper than any cut a redaction might make: a structured answer keeps its shape.
      let deep: unknown = { text }
      for (let i = 0; i < 40; i++) deep = [deep]
      return void res.end(JSON.stringify({ jsonrpc: '2.0', id, result: { isError: true, content: [{ type: 'text', text }], structuredContent: { deep } } }))
    }
    if (body.includes('"tools/call"') && body.includes('"whoami"')) {
      // What it was sent, decoded: a Basic credential's user and password, and a header of any name.
      const { id } = JSON.parse(body) as { id: number }
      const basic = Buffer.from(String(req.headers.authorization).replace(/^Basic /, ''), 'base64').toString('utf8')
      res.writeHead(200, { 'content-type': 'application/json' })
      return void res.end(JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: `you are ${basic} (password ${basic.split(':')[1]}), signed ${req.headers['x-client-name']}` }] } }))
    }
    if (body.includes('"tools/call"') && body.includes('"held"')) {
      // Answers when the test says, with the credential it was sent when called.
      const { id } = JSON.parse(body) as { id: number }
      const text = `held with ${req.headers.authorization}`
      await new Promise<void>((resolve) => (releaseHeld = resolve))
      res.writeHead(200, { 'content-type': 'application/json' })
      return void res.end(JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text }] } }))
    }
    if (body.includes('"tools/call"') && body.includes('"busy"')) {
      // Notifications during the call (an SSE answer): progress and a log line that repeat the credentials.
      const { id, params } = JSON.parse(body) as { id: number; params: { _meta?: { progressToken?: unknown } } }
      const echoed = `calling the ticket API with ${req.headers.authorization} (key ${req.headers['x-api-key']}) as ${req.headers['x-client-name']}`
      const events = [
        { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: params._meta?.progressToken, progress: 1, total: 2, message: echoed } },
        { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', logger: 'tickets', data: { echoed } } },
        { jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'done' }] } },
      ]
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      return void res.end(events.map((event) => `event: message\ndata: ${JSON.stringify(event)}\n\n`).join(''))
    }
    if (body.includes('"tools/call"')) {
      res.writeHead(500, { 'content-type': 'text/plain' })
      return void res.end(`backend refused credentials ${req.headers.authorization} and key ${req.headers['x-api-key']}`)
    }
    const mcp = new McpServer({ name: 'echoing', version: '1' }, { capabilities: { tools: {}, resources: {} } })
    mcp.setRequestHandler('resources/read', async (request) => ({
      contents: [{ uri: request.params.uri, mimeType: 'text/plain', text: `read with ${req.headers.authorization} and ${req.headers['x-api-key']} as ${req.headers['x-client-name']}` }],
    }))
    mcp.setRequestHandler('tools/list', async () => ({ tools: [{ name: 'echo', inputSchema: { type: 'object' } }, { name: 'leak', inputSchema: { type: 'object' } }, { name: 'sorry', inputSchema: { type: 'object' } }, { name: 'busy', inputSchema: { type: 'object' } }, { name: 'held', inputSchema: { type: 'object' } }, { name: 'whoami', inputSchema: { type: 'object' } }] }))
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
    await mcp.connect(transport)
    await answerWith(transport, req, res, { body })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server
}

/**
 * A stateless MCP server (the SDK's) that repeats the credentials it was sent in every kind of
 * message it can send: initialize (its name, instructions, capabilities), tools/list (a tool's
 * title, description, schemas, annotations, _meta and even a name), a call's result (text,
 * structured, a resource link, an embedded resource) and its notifications (progress, a log line,
 * tools/list_changed, resources/updated), a JSON-RPC error's message and data, resources,
 * templates, prompts and completions.
 */
async function echoingEverywhere(): Promise<Server> {
  const server = createServer(async (req, res) => {
    const sent = `${req.headers.authorization} and ${req.headers['x-api-key']}`
    const echo = (what: string) => `${what} sent ${sent} by ${req.headers['x-client-name']}`
    const mcp = new McpServer({ name: 'echoing-everywhere', version: echo('version'), title: echo('title') }, {
      // The transparent mode hands the server's resources, prompts, completions and logging capabilities on as they came.
      capabilities: { tools: { listChanged: true }, resources: { subscribe: true, listChanged: true, echoed: echo('capability') }, prompts: {}, completions: {}, logging: {} } as ServerCapabilities,
      instructions: echo('instructions'),
    })
    mcp.setRequestHandler('tools/list', async () => ({
      tools: [
        {
          name: 'report', title: echo('title'), description: echo('description'),
          inputSchema: { type: 'object', description: echo('input'), properties: { region: { type: 'string', default: echo('default'), enum: [echo('enum')] } } },
          outputSchema: { type: 'object', description: echo('output') },
          annotations: { title: echo('annotation') }, _meta: { echoed: echo('meta') },
        },
        { name: 'fail', inputSchema: { type: 'object' } },
        // A name that is the API key: the agent must not see it as a tool's name either.
        { name: `lookup-${req.headers['x-api-key']}`, inputSchema: { type: 'object' } },
      ],
      nextCursor: undefined,
    }))
    mcp.setRequestHandler('tools/call', async (request, ctx) => {
      if (request.params.name === 'fail') throw new ProtocolError(-32001, echo('error'), { sent: [echo('data')] })
      const progressToken = ctx.mcpReq._meta?.progressToken
      if (progressToken !== undefined) await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress: 1, total: 2, message: echo('progress') } })
      await ctx.mcpReq.notify({ method: 'notifications/message', params: { level: 'error', logger: echo('logger'), data: echo('log line') } })
      await ctx.mcpReq.notify({ method: 'notifications/resources/updated', params: { uri: `echo://${req.headers['x-api-key']}` } })
      await ctx.mcpReq.notify({ method: 'notifications/tools/list_changed', params: { _meta: { echoed: echo('list changed') } } })
      return {
        content: [
          { type: 'text', text: echo('text') },
          { type: 'resource_link', uri: `echo://${req.headers['x-api-key']}`, name: echo('link'), description: echo('link description') },
          { type: 'resource', resource: { uri: 'echo://embedded', mimeType: 'text/plain', text: echo('embedded') } },
        ],
        // The key as a key: an object of what the server was sent, by value.
        structuredContent: { echoed: echo('structured'), [String(req.headers['x-api-key'])]: 'the key' },
      }
    })
    mcp.setRequestHandler('resources/list', async () => ({ resources: [{ uri: 'echo://whoami', name: echo('resource'), description: echo('resource description') }], nextCursor: req.headers['x-api-key'] as string }))
    mcp.setRequestHandler('resources/templates/list', async () => ({ resourceTemplates: [{ uriTemplate: 'echo://{who}', name: echo('template') }] }))
    mcp.setRequestHandler('resources/read', async (request) => ({ contents: [{ uri: request.params.uri, mimeType: 'text/plain', text: echo('read') }] }))
    mcp.setRequestHandler('prompts/list', async () => ({ prompts: [{ name: 'greet', description: echo('prompt'), arguments: [{ name: 'who', description: echo('argument') }] }] }))
    mcp.setRequestHandler('prompts/get', async () => ({ description: echo('prompt got'), messages: [{ role: 'user', content: { type: 'text', text: echo('message') } }] }))
    mcp.setRequestHandler('completion/complete', async () => ({ completion: { values: [echo('completion')], hasMore: false } }))
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined })
    await mcp.connect(transport)
    await answerWith(transport, req, res, { stream: true })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server
}

let everywhere: Server
let echoing: Server
let setup: McpTestSetup
let gatewayConfig: Record<string, unknown>

beforeAll(async () => {
  echoing = await echoingServer()
  everywhere = await echoingEverywhere()
  const url = `http://127.0.0.1:${(echoing.address() as AddressInfo).port}/mcp`
  setup = await startMcpTestGateway('mcp-server-credential-echo', (config) => (gatewayConfig = {
    ...config,
    mcp: { ...config.mcp, servers: [{ name: 'tickets', url, headers: { Authorization: `Bearer ${TOKEN}`, 'X-Api-Key': API_KEY, 'X-Client-Name': 'bouncer-gateway' } }] },
  }))
}, 60_000)

afterAll(async () => {
  await setup?.close()
  echoing?.closeAllConnections()
  echoing?.close()
  everywhere?.closeAllConnections()
  everywhere?.close()
})

it('keeps the server\'s credentials out of the agent\'s error result and the audit record', async () => {
  const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  let text: string
  try {
    const result = await client.callTool({ name: 'tickets__echo', arguments: {} })
    expect(result.isError).toBe(true)
    text = JSON.stringify(result.content)
  } finally {
    await client.close()
  }
  expect(text).toContain('backend refused credentials')
  expect(text).not.toContain(TOKEN)
  expect(text).not.toContain(API_KEY)
  const db = join(setup.dir, 'audit.db')
  await waitFor(() => auditRows(db, "tool = 'tickets__echo'").length === 1, 'the call\'s record', 10_000)
  const [row] = auditRows(db, "tool = 'tickets__echo'")
  expect(row).toMatchObject({ status: 502, code: 'upstream_error' })
  expect(JSON.stringify(row)).not.toContain(TOKEN)
  expect(JSON.stringify(row)).not.toContain(API_KEY)
}, 60_000)

// Found by review: the server's error `data` reached the agent as it came (the SDK keeps it on the
// error it raises, and the gateway's MCP server sends it on); and a header that is no credential
// (a client name) was redacted from every message that mentioned it.
it('keeps the server\'s credentials out of a JSON-RPC error\'s data, and leaves other headers\' values alone', async () => {
  const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  let error: unknown
  try {
    error = await client.callTool({ name: 'tickets__leak', arguments: {} }).then(() => null, (err: unknown) => err)
  } finally {
    await client.close()
  }
  const seen = JSON.stringify({ message: (error as Error).message, data: (error as { data?: unknown }).data })
  expect(seen).toContain('denied for bouncer-gateway')
  expect(seen).toContain('[redacted]')
  expect(seen).not.toContain(TOKEN)
  expect(seen).not.toContain(API_KEY)
}, 60_000)

// Found by review: a tool's failure told as MCP tells it, a result with isError (what a server that
// catches its API's error and hands its text on answers), reached the agent with the credentials
// it echoed: only JSON-RPC errors and HTTP errors were redacted.
it('keeps the server\'s credentials out of a tool result the server wrote', async () => {
  const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  let text: string
  try {
    const result = await client.callTool({ name: 'tickets__sorry', arguments: {} })
    expect(result.isError).toBe(true)
    text = JSON.stringify(result.content)
    let deep = (result.structuredContent as { deep: unknown }).deep
    for (let i = 0; i < 40; i++) deep = (deep as unknown[])[0]
    expect((deep as { text: string }).text).toBe("the ticket API refused [redacted] (key [redacted]) for bouncer-gateway")
  } finally {
    await client.close()
  }
  expect(text).toContain('the ticket API refused')
  expect(text).toContain('for bouncer-gateway')
  expect(text).not.toContain(TOKEN)
  expect(text).not.toContain(API_KEY)
}, 60_000)

// Found by review: a server's progress during a call (notifications/progress, its message) was
// forwarded to the agent as the server wrote it, the credentials it echoed included. Its log lines
// (notifications/message) are not forwarded at all: the agent must not see them either.
it('keeps the server\'s credentials out of the progress it reports during a call', async () => {
  const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  const progress: unknown[] = []
  const notifications: unknown[] = []
  client.fallbackNotificationHandler = async (notification) => void notifications.push(notification)
  try {
    const result = await client.callTool({ name: 'tickets__busy', arguments: {} }, { onprogress: (report) => void progress.push(report) })
    expect(result.content).toEqual([{ type: 'text', text: 'done' }])
  } finally {
    await client.close()
  }
  expect(progress).toEqual([{ progress: 1, total: 2, message: 'calling the ticket API with [redacted] (key [redacted]) as bouncer-gateway' }])
  const seen = JSON.stringify([progress, notifications])
  expect(seen).not.toContain(TOKEN)
  expect(seen).not.toContain(API_KEY)
}, 60_000)

// Found by review: the transparent mode (one server, unprefixed) set a pass-through handler for
// resources, prompts, completions and logging whatever the server offered, and the SDK refuses a
// handler for a capability the gateway's server then lacks: every initialize answered 500
// internal_error for a server without prompts (this one), or for any server while it was down.
it('passes a transparent server\'s resources through when it offers no prompts (initialize answered), without the credentials it echoes', async () => {
  const mcp = gatewayConfig.mcp as { servers: Array<Record<string, unknown>> }
  await setup.gateway.writeConfig({ ...gatewayConfig, mcp: { ...mcp, servers: [{ ...mcp.servers[0], prefix: false }] } })
  expect((await setup.gateway.reload()).ok).toBe(true)
  try {
    const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
    try {
      expect(client.getServerCapabilities()?.prompts).toBeUndefined()
      const read = JSON.stringify((await client.readResource({ uri: 'echo://whoami' })).contents)
      expect(read).toContain('as bouncer-gateway')
      // Found by review too: passed through as the server answered, the credentials it echoed included.
      expect(read).not.toContain(TOKEN)
      expect(read).not.toContain(API_KEY)
    } finally {
      await client.close()
    }
  } finally {
    await setup.gateway.writeConfig(gatewayConfig)
    expect((await setup.gateway.reload()).ok).toBe(true)
  }
}, 60_000)

// Found by the mcp-redact probe: the redaction had been added message by message (a tool's result,
// its error, its progress, a pass-through answer) and every other way a server speaks went to the
// agent as the server wrote it: its tool list (descriptions, titles, schemas, a tool named with the
// key), and the capabilities the transparent mode hands on. Now every message the server sends
// passes one redaction before the SDK reads it (servers.ts).
it('keeps the server\'s credentials out of everything the server says: tool list, results, notifications, errors, resources, prompts, completions', async () => {
  const mcp = gatewayConfig.mcp as { servers: Array<Record<string, unknown>> }
  const url = `http://127.0.0.1:${(everywhere.address() as AddressInfo).port}/mcp`
  await setup.gateway.writeConfig({ ...gatewayConfig, mcp: { ...mcp, servers: [{ ...mcp.servers[0], url, prefix: false }] } })
  expect((await setup.gateway.reload()).ok).toBe(true)
  const logged = setup.gateway.logs.length
  const seen: Record<string, unknown> = {}
  try {
    const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
    const notifications: unknown[] = []
    client.fallbackNotificationHandler = async (notification) => void notifications.push(notification)
    try {
      seen.initialize = [client.getServerCapabilities(), client.getServerVersion(), client.getInstructions()]
      const { tools } = await client.listTools()
      seen.tools = tools
      const report = tools.find((tool) => tool.name === 'report')
      expect(report?.description).toBe('description sent [redacted] and [redacted] by bouncer-gateway')
      const progress: unknown[] = []
      const result = await client.callTool({ name: 'report', arguments: {} }, { onprogress: (report) => void progress.push(report) })
      seen.result = result
      seen.progress = progress
      expect(result.content).toContainEqual({ type: 'text', text: 'text sent [redacted] and [redacted] by bouncer-gateway' })
      expect(result.structuredContent).toEqual({ echoed: 'structured sent [redacted] and [redacted] by bouncer-gateway', '[redacted]': 'the key' })
      seen.error = await client.callTool({ name: 'fail', arguments: {} }).then((answer) => answer, (err: unknown) => ({ message: (err as Error).message, data: (err as { data?: unknown }).data }))
      expect(JSON.stringify(seen.error)).toContain('error sent [redacted] and [redacted] by bouncer-gateway')
      seen.resources = await client.listResources()
      seen.templates = await client.listResourceTemplates()
      seen.read = await client.readResource({ uri: 'echo://whoami' })
      seen.prompts = await client.listPrompts()
      seen.prompt = await client.getPrompt({ name: 'greet', arguments: { who: 'me' } })
      seen.completion = await client.complete({ ref: { type: 'ref/prompt', name: 'greet' }, argument: { name: 'who', value: 'm' } })
      expect(JSON.stringify(seen.prompt)).toContain('message sent [redacted] and [redacted] by bouncer-gateway')
      // The server's tools/list_changed, told to the agent by the gateway once it has the list again.
      await waitFor(() => notifications.some((n) => (n as { method?: string }).method === 'notifications/tools/list_changed'), 'the tools changed, told to the agent', 10_000)
      seen.notifications = notifications
      seen.toolsAgain = await client.listTools()
    } finally {
      await client.close()
    }
    const db = join(setup.dir, 'audit.db')
    await waitFor(() => auditRows(db, "tool IN ('report', 'fail')").length === 2, 'the calls\' records', 10_000)
    seen.audit = auditRows(db, "tool IN ('report', 'fail')")
    // The tool named with the key is skipped (its name is no longer one MCP allows), and logged so.
    await waitFor(() => setup.gateway.logs.slice(logged).some((line) => line.includes('lookup-[redacted]')), 'the tool named with the key, logged as skipped', 10_000)
    seen.logs = setup.gateway.logs.slice(logged)
  } finally {
    await setup.gateway.writeConfig(gatewayConfig)
    expect((await setup.gateway.reload()).ok).toBe(true)
  }
  for (const [what, value] of Object.entries(seen)) {
    const text = JSON.stringify(value)
    expect(text, what).not.toContain(TOKEN)
    expect(text, what).not.toContain(API_KEY)
  }
}, 60_000)

// Found by the mcp-redact probe: the connection to a server kept the headers it was opened with, so
// after a secret's rotation (secrets refresh) it went on sending the old credential until it was
// closed; and the redaction looked only for the new value, so an answer to a request sent before
// the rotation (a notification stream opened before it too) that echoed the old one showed it.
it('sends a rotated credential on the open connection, and the server\'s echo of the old one is redacted too', async () => {
  const files = await mkdtemp(join(tmpdir(), 'bouncer-mcp-rotation-'))
  const [first, second] = ['rotating-credential-one-0123', 'rotating-credential-two-4567']
  await writeFile(join(files, 'tickets-token'), `${first}\n`)
  const mcp = gatewayConfig.mcp as { servers: Array<Record<string, unknown>> }
  const server = mcp.servers[0] as { headers: Record<string, string> }
  await setup.gateway.writeConfig({
    ...gatewayConfig,
    secrets: { store: { type: 'file', dir: files }, refresh_interval: '200ms' },
    mcp: { ...mcp, servers: [{ ...server, headers: { ...server.headers, Authorization: 'Bearer ${secret:tickets-token}' } }] },
  })
  expect((await setup.gateway.reload()).ok).toBe(true)
  const answers: string[] = []
  try {
    const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
    const call = async () => {
      const result = await client.callTool({ name: 'tickets__sorry', arguments: {} })
      answers.push(JSON.stringify(result.content))
    }
    try {
      await call()
      expect(authorizations.at(-1)).toBe(`Bearer ${first}`)
      // A call sent with the first value, answered after the rotation.
      const held = client.callTool({ name: 'tickets__held', arguments: {} })
      held.catch(() => {}) // awaited below; a failure before then ends the test, and closes the client under it
      await waitFor(() => releaseHeld !== null, 'the held call at the server', 10_000)
      await writeFile(join(files, 'tickets-token'), `${second}\n`)
      // Calls until the server is sent the new value (each answer is read for either below).
      await waitFor(async () => {
        await call()
        return authorizations.at(-1) === `Bearer ${second}`
      }, 'the rotated credential sent on the open connection', 10_000)
      releaseHeld?.()
      answers.push(JSON.stringify((await held).content))
      expect(answers.at(-1)).toBe(JSON.stringify([{ type: 'text', text: 'held with [redacted]' }]))
    } finally {
      releaseHeld?.()
      await client.close()
    }
  } finally {
    await setup.gateway.writeConfig(gatewayConfig)
    expect((await setup.gateway.reload()).ok).toBe(true)
    await rm(files, { recursive: true, force: true })
  }
  expect(answers.at(-2)).toContain('the ticket API refused [redacted]') // the call sent with the second value
  for (const answer of answers) {
    expect(answer).not.toContain(first)
    expect(answer).not.toContain(second)
  }
}, 60_000)

// Found by this session's review: only headers named as credentials (auth, key, token…) were
// redacted, so a secret in a header of another name (X-Client-Name: ${secret:…}) that the server
// echoed reached the agent; and a Basic credential's user:password, decoded, was not looked for.
it('redacts a header built from a secret whatever its name, and a Basic credential decoded', async () => {
  const files = await mkdtemp(join(tmpdir(), 'bouncer-mcp-secret-header-'))
  const signature = 'client-signature-0123456789'
  const basic = 'svc-tickets:basic-password-4242'
  await writeFile(join(files, 'client-signature'), `${signature}\n`)
  const mcp = gatewayConfig.mcp as { servers: Array<Record<string, unknown>> }
  const server = mcp.servers[0] as { headers: Record<string, string> }
  await setup.gateway.writeConfig({
    ...gatewayConfig,
    secrets: { store: { type: 'file', dir: files } },
    mcp: { ...mcp, servers: [{ ...server, headers: { ...server.headers, Authorization: `Basic ${Buffer.from(basic).toString('base64')}`, 'X-Client-Name': '${secret:client-signature}' } }] },
  })
  expect((await setup.gateway.reload()).ok).toBe(true)
  let text: string
  try {
    const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
    try {
      text = JSON.stringify((await client.callTool({ name: 'tickets__whoami', arguments: {} })).content)
    } finally {
      await client.close()
    }
  } finally {
    await setup.gateway.writeConfig(gatewayConfig)
    expect((await setup.gateway.reload()).ok).toBe(true)
    await rm(files, { recursive: true, force: true })
  }
  expect(text).toBe(JSON.stringify([{ type: 'text', text: 'you are [redacted] (password [redacted]), signed [redacted]' }]))
}, 60_000)

it('a server that cannot be reached is logged without its URL\'s query, where a key may be given', async () => {
  // The URL was logged whole at each try: `?api_key=…` in clear at warn.
  const closed = createServer()
  closed.listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const port = (closed.address() as AddressInfo).port
  closed.close()
  const lines: string[] = []
  const logger = createLogger({ destination: new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) }) })
  const server = upstreamMcpServer({ name: 'gone', url: `http://127.0.0.1:${port}/mcp?api_key=${API_KEY}`, headers: {}, prefix: true, timeout: 5_000, max_call_time: 60_000, limits: [] }, logger, 1_048_576)
  await expect(server.tools()).rejects.toThrow()
  await server.close()
  const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'MCP server unavailable')
  expect(line).toMatchObject({ server: 'gone', url: `http://127.0.0.1:${port}/mcp` })
  expect(lines.join('')).not.toContain(API_KEY)
})
