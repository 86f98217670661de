// Found by review: the cap on a caller's pending approvals counted them with a query no index
// served (the only one began with the tool), over every approval ever filed, at each held call.
import { mkdtempSync, rmSync } from 'node:fs'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { openApprovalStore } from '../../../src/agents/mcp/approvals.ts'

it('counts a caller\'s pending approvals through an index, and caps them in one transaction', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-approvals-index-'))
  try {
    const path = join(dir, 'approvals.db')
    const store = openApprovalStore(path)
    const call = { tool: 't', issuer: 'https://idp.test', subject: 'agent', actor: null, approvers: ['ops'], ttlMs: 60_000 }
    for (let i = 0; i < 100; i++) expect(await store.request({ ...call, argsSha256: `args-${i}` })).not.toBeNull()
    expect(await store.request({ ...call, argsSha256: 'one-more' })).toBeNull()
    store.close()
    const db = new DatabaseSync(path)
    const plan = db.prepare("EXPLAIN QUERY PLAN SELECT count(*) AS n FROM approvals WHERE issuer = ? AND subject = ? AND actor IS ? AND status = 'pending' AND expires_at > ?").all('i', 's', null, 0)
    db.close()
    expect(JSON.stringify(plan)).toContain('USING INDEX approvals_caller')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
