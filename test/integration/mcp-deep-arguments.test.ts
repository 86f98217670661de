// Found by an adversarial probe (helper): a tools/call whose arguments nest 200,000 deep overflowed
// the stack in the argument digest (JSON.parse takes any depth; canonicalJson recursed), answered
// -32603 and left no audit record: an agent could probe tools it may not call unrecorded.
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { auditRows, MCP_RESOURCE, type McpTestSetup, startMcpTestGateway } from '../helpers/mcp.ts'
import type { TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let setup: McpTestSetup
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let dir: string

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-deep')
  ;({ idp, upstream, gateway, dir } = setup)
}, 60_000)

afterAll(() => setup?.close())

const DEPTH = 200_000
const deep = `${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}`
/** The digest of `{"x": deep}`: its canonical JSON is the text itself (no key to sort, no space). */
const deepDigest = createHash('sha256').update(`{"x":${deep}}`).digest('hex')

async function post(token: string, body: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${gateway.url}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body,
  })
  return { status: res.status, text: await res.text() }
}

describe('deeply nested tool arguments (2025-era request, no session)', () => {
  it('are refused as invalid params, and the refusal is audited', async () => {
    const agent = await idp.token('analytics-agent', { resource: MCP_RESOURCE })
    // list_customers: the agent's role has no statement allowing it; get_daily_report it may call.
    for (const [id, tool] of [[7, 'list_customers'], [8, 'get_daily_report']] as const) {
      const answer = await post(agent, `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"${tool}","arguments":{"x":${deep}}}}`)
      expect(answer.text).toContain('-32602')
      expect(answer.text).toContain('nest deeper than 64 levels')
      await waitFor(() => auditRows(join(dir, 'audit.db'), `tool = '${tool}'`).length >= 1, `the record of ${tool}`, 20_000)
      // With the arguments' digest, as any call's record has it (it was '': a probe).
      expect(auditRows(join(dir, 'audit.db'), `tool = '${tool}'`)).toMatchObject([{ status: 400, decision: 'deny', code: 'bad_request', args_sha256: deepDigest }])
    }
    expect(upstream.received).toHaveLength(0)
    // Arguments of a real tool's depth still run.
    const shallow = await post(agent, '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"get_daily_report","arguments":{"region":"eu"}}}')
    expect(shallow.text).not.toContain('-32602')
    expect(upstream.received).toHaveLength(1)
  }, 60_000)
})
