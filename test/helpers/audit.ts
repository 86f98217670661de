// The audit record of one request, read from a SQLite log as it is written: the worker writes in
// batches, so a test waits for it rather than reading once.
import { generateKeyPairSync } from 'node:crypto'
import { searchAudit, type AuditRecord } from '../../src/audit/index.ts'
import { signCut } from '../../src/audit/checkpoint.ts'
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
