// Found by the audit probe: a record added to a stopped gateway's log, after the checkpoint it signed
// at shutdown, with its prev_hash and hash computed as the gateway computes them, passed `bouncer
// audit verify` — and the next start went on from it: the gateway linked its next record to the
// fabricated one and its next checkpoint signed it, so nothing ever showed that the gateway had not
// written it. The chain state (chain.json, written before any sink takes a record) ends before it:
// the gateway now restarts its chain there, and the restart record says why.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { AUDIT_FIELDS } from '../../src/audit/fields.ts'
import { hashOf, type AuditRecord } from '../../src/audit/record.ts'
import { recordFromRow } from '../../src/audit/sinks/sqlite.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway } from '../helpers/gateway.ts'

let dir: string
let log: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-audit-appended-'))
  log = join(dir, 'audit.db')
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A gateway on the log that serves `paths` (each recorded) and stops. */
async function serve(paths: string[]): Promise<void> {
  const gw = await startTestGateway({ audit: { sinks: [{ type: 'sqlite', path: log }], spill_dir: join(dir, 'spill') }, routes: [] })
  try {
    for (const path of paths) {
      const res = await fetch(`${gw.url}${path}`)
      await res.arrayBuffer()
      await waitForAuditRecord(log, String(res.headers.get('x-request-id')))
    }
  } finally {
    await gw.close()
  }
}

/** A record added after the newest, linked to it and hashed as the gateway does: the chain reads whole. */
function appendFabricated(): AuditRecord {
  const db = new DatabaseSync(log)
  try {
    const last = db.prepare('SELECT * FROM audit_records ORDER BY seq DESC LIMIT 1').get() as Record<string, unknown>
    const { hash: previous, ...rest } = recordFromRow(last)
    const body = { ...rest, id: 'fabricated-1', path: '/admin/delete-everything', subject: 'alice', status: 200, decision: 'allow' as const, code: null, prev_hash: previous }
    const record = { ...body, hash: hashOf(body) }
    const columns = ['chain', 'seq', 'time_ms', ...AUDIT_FIELDS]
    const values = [last.chain, Number(last.seq) + 1, last.time_ms, ...AUDIT_FIELDS.map((f) => (f === 'roles' ? JSON.stringify(record.roles) : (record as Record<string, unknown>)[f]))]
    db.prepare(`INSERT INTO audit_records (${columns.map((c) => `"${c}"`).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`).run(...(values as Array<string | number | null>))
    return record
  } finally {
    db.close()
  }
}

it('does not take a record added while it was stopped as its own: its chain restarts, saying why', async () => {
  await serve(['/one', '/two'])
  const fabricated = appendFabricated()
  await serve(['/three'])
  const records = await searchAudit({ type: 'sqlite', path: log }, { limit: 10 })
  expect(records.map((r) => r.path).sort()).toEqual(['-', '/admin/delete-everything', '/one', '/three', '/two'])
  const restart = records.find((r) => r.code === 'chain_restarted') as AuditRecord
  const three = records.find((r) => r.path === '/three') as AuditRecord
  // The next record is not linked to the fabricated one: a new chain begins, its first record says why.
  expect(three.prev_hash).not.toBe(fabricated.hash)
  expect(three.prev_hash).toBe(restart.hash)
  expect(restart.detail).toContain('is past record 2, where the chain state')
  expect(restart.detail).toContain('records no worker of this gateway numbered as far as its state file says (added to the log while it was stopped, or the state file\'s last write lost to a power failure?)')
}, 60_000)
