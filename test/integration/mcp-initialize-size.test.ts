// Found by an adversarial probe (helper): an MCP session keeps its client's initialize params (clientInfo,
// capabilities) for as long as it lives, bounded only by max_body_bytes: 20 sessions opened with 2 MB of them each
// held 40 MB of heap, and one caller's 100 sessions could hold a gigabyte. Now the params are at most 64 KB.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_INITIALIZE_PARAMS_BYTES } from '../../src/agents/mcp/sessions.ts'
import { MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

let setup: McpTestSetup
beforeAll(async () => {
  setup = await startMcpTestGateway('initialize-size')
}, 60_000)
afterAll(() => setup?.close())

const initialize = (pad: string) => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: { experimental: { pad: { x: pad } } }, clientInfo: { name: 'probe', version: '1' } } })

async function post(body: string): Promise<Response> {
  const token = await setup.idp.token('looker-reports', { resource: MCP_RESOURCE })
  return fetch(`${setup.gateway.url}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body })
}

describe('an MCP initialize request', () => {
  it('whose params are over 64 KB is refused 413 and opens no session; a usual one opens a session', async () => {
    const large = await post(initialize('A'.repeat(MAX_INITIALIZE_PARAMS_BYTES)))
    const problem = (await large.json()) as { code: string; detail: string }
    expect({ status: large.status, code: problem.code, session: large.headers.get('mcp-session-id') }).toEqual({ status: 413, code: 'payload_too_large', session: null })
    expect(problem.detail).toContain('at most 65536 bytes')
    const usual = await post(initialize('x'))
    await usual.text()
    expect(usual.status).toBe(200)
    expect(usual.headers.get('mcp-session-id')).toMatch(/^[0-9a-f-]{36}\.[A-Za-z0-9_-]{22}$/)
  }, 30_000)
})
