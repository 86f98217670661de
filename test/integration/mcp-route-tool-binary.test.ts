// A route tool's answer reaches the agent as what it is (MCP "Tool Result"): found by a probe, every
// answer was decoded as UTF-8 text into the result, so a PNG or any other bytes reached the agent as
// a page of U+FFFD, the bytes lost, and a Latin-1 text came out garbled. Images and audio are image
// and audio content, other bytes an embedded resource with a base64 blob, text is decoded in its charset.
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { Client } from '@modelcontextprotocol/client'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

/** The first bytes of a PNG (its signature, not valid UTF-8), and bytes no text is made of. */
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe, 0x80])
const BYTES = Buffer.from([0x00, 0x01, 0xc3, 0x28, 0xff, 0x7f, 0x80])
const WAV = Buffer.from('RIFF\u0000\u0000\u0000\u0000WAVE', 'latin1')

const answers: Record<string, [string | null, Buffer]> = {
  '/sales/daily/png': ['image/png', PNG],
  '/sales/daily/wav': ['audio/wav', WAV],
  '/sales/daily/bin': ['application/octet-stream', BYTES],
  '/sales/daily/untyped': [null, BYTES],
  '/sales/daily/latin': ['text/plain; charset=iso-8859-1', Buffer.from('café', 'latin1')],
  '/sales/daily/json': ['application/json', Buffer.from('{"total":3}')],
}

let api: TestUpstream
let setup: McpTestSetup
let client: Client

beforeAll(async () => {
  api = await startUpstream((req, res) => {
    const [type, body] = answers[req.url ?? ''] ?? ['text/plain', Buffer.from('no such answer')]
    res.writeHead(200, { ...(type ? { 'content-type': type } : {}), 'content-length': body.length })
    res.end(body)
  })
  setup = await startMcpTestGateway('mcp-route-tool-binary', (config) => ({ ...config, upstreams: [{ name: 'sales-api', url: api.url }] }))
  client = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
}, 60_000)

afterAll(async () => {
  await client?.close()
  await setup?.close()
  await api?.close()
})

const call = (region: string) => client.callTool({ name: 'get_daily_report', arguments: { region } })

it('gives an image or audio answer as image or audio content, its bytes base64', async () => {
  expect((await call('png')).content).toEqual([{ type: 'image', mimeType: 'image/png', data: PNG.toString('base64') }])
  expect((await call('wav')).content).toEqual([{ type: 'audio', mimeType: 'audio/wav', data: WAV.toString('base64') }])
})

it('gives other bytes as an embedded resource with a base64 blob at the route\'s URL', async () => {
  expect((await call('bin')).content).toEqual([{ type: 'resource', resource: { uri: 'https://mcp.bouncer.test/sales/daily/bin', mimeType: 'application/octet-stream', blob: BYTES.toString('base64') } }])
  // Without a Content-Type, bytes that are not UTF-8 are bytes too.
  expect((await call('untyped')).content).toEqual([{ type: 'resource', resource: { uri: 'https://mcp.bouncer.test/sales/daily/untyped', mimeType: 'application/octet-stream', blob: BYTES.toString('base64') } }])
})

it('decodes text in its charset, and keeps JSON as text with its structured content', async () => {
  expect((await call('latin')).content).toEqual([{ type: 'text', text: 'café' }])
  const json = await call('json')
  expect(json.content).toEqual([{ type: 'text', text: '{"total":3}' }])
  expect(json.structuredContent).toEqual({ total: 3 })
})
