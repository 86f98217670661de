// The audit record of one request, read from a SQLite log as it is written: the worker writes in
// batches, so a test waits for it rather than reading once.
import { generateKeyPairSync } from 'node:crypto'
import { DatabaseSync } from 'node:sqlite'
import { searchAudit, type AuditRecord } from '../../src/audit/index.ts'
import { signCut } from '../../src/audit/checkpoint.ts'
import { AUDIT_FIELDS } from '../../src/audit/fields.ts'
import type { CutSigner } from '../../src/audit/sinks/sink.ts'
import { waitFor } from './wait.ts'

/** A retention cut signer with a key of its own, for a sink's deleteBefore called directly. */
export function testCutSigner(kid = 'test-key'): CutSigner {
  const { privateKey } = generateKeyPairSync('ed25519')
  return (cut) => signCut(cut, { kid, privateKey })
}

export async function waitForAuditRecord(dbPath: string, requestId: string, timeoutMs = 20_000): Promise<AuditRecord> {
  let found: AuditRecord | undefined
  await waitFor(async () => {
    found = (await searchAudit({ type: 'sqlite', path: dbPath }, { limit: 500 }).catch(() => [])).find((r) => r.request_id === requestId)
    return found !== undefined
  }, `the audit record of ${requestId}`, timeoutMs)
  return found as AuditRecord
}

/**
 * Fills a SQLite log for reads at scale: its first record (seq 1) copied until the log holds
 * `records`, each copy a millisecond older than the one before (the search's order), under its own
 * seq and id (`<id>-<n>`, n from 2), its detail 1,024 characters (the bound). Not a chain verify passes.
 * `distinctPaths`: each copy's path is the first's with `/<n>` after it (requests replay decides one by one).
 */
export function copyFirstRecord(log: string, records: number, options: { distinctPaths?: boolean } = {}): void {
  const db = new DatabaseSync(log)
  try {
    db.exec('PRAGMA busy_timeout = 5000')
    const columns = ['chain', 'seq', 'time_ms', ...AUDIT_FIELDS.map((name) => `"${name}"`)]
    const values = columns.map((c) => ({ seq: 'n.i', time_ms: 'time_ms - n.i', '"id"': `id || '-' || n.i`, '"time"': `strftime('%Y-%m-%dT%H:%M:%fZ', (time_ms - n.i) / 1000.0, 'unixepoch')`, '"detail"': `substr(replace(hex(zeroblob(1024)), '0', 'd'), 1, 1024)`, ...(options.distinctPaths ? { '"path"': `path || '/' || n.i` } : {}) })[c] ?? c)
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < ${records})
      INSERT INTO audit_records (${columns.join(', ')}) SELECT ${values.join(', ')} FROM audit_records, n WHERE seq = 1`)
  } finally {
    db.close()
  }
}
