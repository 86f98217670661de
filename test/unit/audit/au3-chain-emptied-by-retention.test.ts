// A chain every record of which retention deleted (an instance that no longer runs, its records
// aged out): verify said "ok: 0 records in 1 chain verified" and nothing else, so a whole chain's
// deletion read like an empty log. It now says the chain was cut by retention, and from where.
import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { lostRecordsRecord } from '../../../src/audit/chain-head.ts'
import { signCut } from '../../../src/audit/checkpoint.ts'
import { GENESIS_HASH } from '../../../src/audit/record.ts'
import { createSqliteSink } from '../../../src/audit/sinks/sqlite.ts'
import { verifyAudit } from '../../../src/audit/verify.ts'
import { verifyPasses, verifyReport } from '../../../src/cli/audit.ts'

describe('verify of a chain retention emptied', () => {
  it('passes and names the chain, the records cut and the cut', async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'au3-emptied-')), 'audit.db')
    const sink = createSqliteSink(db, { durable: false })
    await sink.open()
    let prev = GENESIS_HASH
    const rows = [1, 2, 3].map((seq) => {
      const record = lostRecordsRecord(seq, new Date().toISOString(), 'gone-instance', prev)
      prev = record.hash
      return { chain: 'gone-chain', seq, record }
    })
    await sink.write(rows)
    const { privateKey } = generateKeyPairSync('ed25519')
    expect(await sink.deleteBefore(Date.now() + 60_000, (cut) => signCut(cut, { kid: 'k', privateKey }))).toBe(3)
    await sink.close()

    const result = await verifyAudit({ type: 'sqlite', path: db }, { file: join(db, '..', 'none.checkpoints'), keys: new Map([['k', createPublicKey(privateKey)]]), keyProblem: null })
    expect(verifyPasses(result, null)).toBe(true)
    expect(verifyReport(result)).toMatch(/^ok: 0 records in 1 chain verified\ncut by retention: chain gone-chain has no record left: records 1–3 were deleted by the retention cut at \S+Z \(the newest of them from \S+Z\)$/)
  })
})
