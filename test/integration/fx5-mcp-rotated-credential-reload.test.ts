// The credential values a secret rotation replaced are redacted from what an aggregated MCP server
// says (mcp-server-credential-echo), as it may still hold and echo them. But a reload that changed
// the server's other settings (its timeout) made it anew, and the new one began that list empty: the
// server's echo of the value rotated out just before the reload reached the agent. Upstreams had the
// same fault (fx4-rotated-credential-reload, and a refused reload in between: ups3-rotated-credential-
// refused-reload); the MCP servers' registry now hands the list over the same way.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Server as McpServer, WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/server'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { answerWith } from '../helpers/mcp-servers.ts'
import { waitFor } from '../helpers/wait.ts'

const OLD = 'old-mcp-token-fx5-7c2e91d04a'
const NEW = 'new-mcp-token-fx5-3b8f06e2c5'

/** The Authorization headers the server was sent, in order. */
const sent: string[] = []

/**
 * A stateless MCP server whose `whoami` answers with the credential it expects: the first it was
 * sent (it has not taken the rotation yet), echoed in its answer.
 */
async function holdingServer(): Promise<Server> {
  let held: string | null = null
  const server = createServer(async (req, res) => {
    const authorization = String(req.headers.authorization)
    sent.push(authorization)
    held ??= authorization
    let body = ''
    for await (const chunk of req) body += String(chunk)
    if (body.includes('"tools/call"')) {
      const { id } = JSON.parse(body) as { id: number }
      const text = authorization === held ? 'welcome' : `refused: expected ${held}`
      res.writeHead(200, { 'content-type': 'application/json' })
      return void res.end(JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text }] } }))
    }
    const mcp = new McpServer({ name: 'holding', version: '1' }, { capabilities: { tools: {} } })
    mcp.setRequestHandler('tools/list', async () => ({ tools: [{ name: 'whoami', inputSchema: { type: 'object' } }] }))
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
    await mcp.connect(transport)
    await answerWith(transport, req, res, { body })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server
}

let holding: Server
let setup: McpTestSetup
let files: string
let config: (timeout: string, admin?: Record<string, unknown>) => Record<string, unknown>

beforeAll(async () => {
  holding = await holdingServer()
  files = await mkdtemp(join(tmpdir(), 'bouncer-fx5-mcp-rotated-'))
  await writeFile(join(files, 'tickets-token'), `${OLD}\n`)
  await writeFile(join(files, 'bad-admin-token'), 'has white space\n')
  const url = `http://127.0.0.1:${(holding.address() as AddressInfo).port}/mcp`
  setup = await startMcpTestGateway('fx5-mcp-rotated', (base) => {
    config = (timeout, admin = {}) => ({
      ...base,
      admin,
      secrets: { store: { type: 'file', dir: files }, refresh_interval: '100ms' },
      mcp: { ...base.mcp, servers: [{ name: 'tickets', url, timeout, headers: { Authorization: 'Bearer ${secret:tickets-token}' } }] },
    })
    return config('10s')
  })
}, 60_000)

afterAll(async () => {
  await setup?.close()
  holding?.closeAllConnections()
  holding?.close()
  if (files) await rm(files, { recursive: true, force: true })
})

/** The text of the agent's call to the server's whoami, on a connection of its own. */
async function whoami(): Promise<string> {
  const client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  try {
    return JSON.stringify((await client.callTool({ name: 'tickets__whoami', arguments: {} })).content)
  } finally {
    await client.close()
  }
}

async function expectOldRedacted(): Promise<void> {
  const text = await whoami()
  expect(sent.at(-1)).toBe(`Bearer ${NEW}`)
  expect(text).toContain('refused: expected [redacted]')
  expect(text).not.toContain(OLD)
}

it('redacts the server\'s echo of a rotated-out credential after a refused reload and a reload that changes the server', async () => {
  expect(await whoami()).toContain('welcome')
  expect(sent.at(-1)).toBe(`Bearer ${OLD}`)
  await writeFile(join(files, 'tickets-token'), `${NEW}\n`)
  await waitFor(async () => (await whoami()).includes('refused'), 'the rotated credential to be sent', 10_000)
  await expectOldRedacted()

  // Another timeout: the server is made anew, its headers' templates as they were.
  await setup.gateway.writeConfig(config('11s'))
  expect((await setup.gateway.reload()).ok).toBe(true)
  await expectOldRedacted()

  // Refused once the server was made anew (another timeout): the admin token can be presented by no one.
  await setup.gateway.writeConfig(config('12s', { token: '${secret:bad-admin-token}' }))
  expect((await setup.gateway.reload()).ok).toBe(false)
  await expectOldRedacted()

  // Then a reload that changes the server again, and is swapped in.
  await setup.gateway.writeConfig(config('13s'))
  expect((await setup.gateway.reload()).ok).toBe(true)
  await expectOldRedacted()
}, 60_000)
