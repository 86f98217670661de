// Found by an adversarial probe (helper). An approval-gated route tool whose route carries a rate
// limit: the approval check ran before the route's request (and its limits), so calls that ended
// pending never met the limit. Three JSON-RPC batches of 100 calls with distinct arguments filed 300
// pending approvals in ~0.3 s, burying the approvers' list (the admin API lists the newest 1,000).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { auditRows, MCP_RESOURCE, mcpTestConfig } from '../helpers/mcp.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let dir: string

beforeAll(async () => {
  ;[idp, upstream] = await Promise.all([startIdentityProvider(), startUpstream()])
  dir = await mkdtemp(join(tmpdir(), 'bouncer-mcp-approvals-flood-'))
  const config = mcpTestConfig(idp.issuer, upstream.url, dir, {
    approvals: [{ tools: ['get_daily_report'], approvers: ['reporter'], ttl: '15m' }],
  }) as Record<string, unknown> & { routes: Array<Record<string, unknown>> }
  // The agent's pace on the route behind the tool: 1 a second, a burst of 2.
  config.limits = [{ name: 'agent-pace', key: 'principal', rate: '1/s', burst: 2 }]
  config.routes[0]!.limits = ['agent-pace']
  gateway = await startTestGateway(config)
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'keys', 20_000)
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await Promise.all([upstream?.close(), idp?.stop()])
  await rm(dir, { recursive: true, force: true })
})

function pendingCount(): number {
  const db = new DatabaseSync(join(dir, 'approvals.db'), { readOnly: true })
  try {
    return Number((db.prepare(`SELECT count(*) AS n FROM approvals WHERE status = 'pending'`).get() as { n: number }).n)
  } finally {
    db.close()
  }
}

describe('an approval-gated route tool with a rate-limited route', () => {
  it('a looping agent meets the route\'s limit instead of filing unlimited pending approvals', async () => {
    const agent = await idp.token('analytics-agent', { resource: MCP_RESOURCE })
    const batch = (from: number) => JSON.stringify(Array.from({ length: 100 }, (_, i) => ({
      jsonrpc: '2.0', id: from + i, method: 'tools/call', params: { name: 'get_daily_report', arguments: { region: 'eu', limit: from + i } },
    })))
    let limited = 0
    for (let round = 0; round < 3; round++) {
      const res = await fetch(`${gateway.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${agent}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
        body: batch(round * 100),
      })
      expect(res.status).toBe(200)
      const text = await res.text()
      if (round === 0) expect(text).toContain('pending_approval')
      limited += text.split('rate_limited').length - 1
    }
    // A burst of 2, then 1 a second: a few pending at most, every other call refused with the route's 429.
    const pending = pendingCount()
    expect(pending).toBeGreaterThanOrEqual(2)
    expect(pending).toBeLessThanOrEqual(5)
    expect(limited).toBeGreaterThan(0)
    // One record per refused call.
    await waitFor(() => auditRows(join(dir, 'audit.db'), `tool = 'get_daily_report' AND code = 'rate_limited' AND status = 429`).length === 300 - pending, 'the refusals audited', 20_000)
  }, 60_000)
})
