// What the console's audit page says of a verification (console/src/verification.ts): the text a
// person reads for a clean log, an empty one, checkpoints that could not be checked, and a break.
import { describe, expect, it } from 'vitest'
import type { Verification } from '../../../src/admin/console-shapes.ts'
import type { VerifyResult } from '../../../src/audit/chain-shapes.ts'
import { summarizeVerification } from '../../../console/src/verification.ts'

const clean: VerifyResult & { ms: number } = {
  ok: true, checked: 1200, chains: 1, problems: [], restarts: [], losses: [], truncations: [], rewritten: [], forged: [],
  anchored: 1, unanchored: [], unknownKeys: 0, uncheckable: null, damagedCheckpointLines: 0, cuts: [], ms: 12,
}

describe('the audit page\'s verification summary', () => {
  it('a clean log: verified through its last record, with its anchored chains', () => {
    expect(summarizeVerification(clean)).toEqual({ ok: true, headline: '✓ Verified through record 1,200 (1 chain, 1 anchored to a signed checkpoint) in 12 ms.', breaks: [], notes: [] })
  })

  // Found by the audit probe: the page said "N chains, M anchored" and named none of the others.
  it('a chain no signed checkpoint anchors is named, with its newest record, under a clean verdict', () => {
    const summary = summarizeVerification({ ...clean, chains: 2, unanchored: [{ chain: 'cli:ops-1', newest: '2026-12-05T03:00:00.000Z' }] })
    expect(summary.ok).toBe(true)
    expect(summary.notes).toEqual(['chain cli:ops-1 is not anchored to a signed checkpoint (newest record 2026-12-05T03:00:00.000Z): records deleted from its end would not show'])
  })

  // Records lost to a full spill while every sink was away: the chain is whole, and its records_lost record is named.
  it('a records_lost record is a note under a clean verdict', () => {
    const summary = summarizeVerification({ ...clean, losses: [{ chain: 'c1', id: 'r1', time: '2026-12-05T15:00:00.000Z', detail: '12 audit records were lost from 2026-12-05T14:59:00.000Z: every sink was away' }] })
    expect(summary.ok).toBe(true)
    expect(summary.notes).toEqual(['chain c1 lost records (2026-12-05T15:00:00.000Z): 12 audit records were lost from 2026-12-05T14:59:00.000Z: every sink was away'])
  })

  // A chain that began anew (its head unreadable, or its first records in no sink): the page says so, as the command line does.
  it('a chain_restarted record is a note under a clean verdict', () => {
    const summary = summarizeVerification({ ...clean, chains: 2, restarts: [{ chain: 'gw:2', id: 'r9', time: '2026-12-05T16:00:00.000Z', detail: 'the records it numbered (1–3) are in no sink and no checkpoint signed one' }] })
    expect(summary.ok).toBe(true)
    expect(summary.notes).toEqual(['chain gw:2 restarted at 2026-12-05T16:00:00.000Z (record r9): the records it numbered (1–3) are in no sink and no checkpoint signed one'])
  })

  // The retention cut is signed (src/audit/checkpoint.ts): the page names what `bouncer audit verify` names.
  it('a retention cut: forged or made early is a break; unsigned or by another key is a note', () => {
    const cut = { chain: 'c1', seq: 40, hash: 'h', newest: '2026-12-05T05:00:00.000Z', time: '2026-12-05T05:00:01.000Z', kid: 'k', sig: 's' }
    const noted = summarizeVerification({ ...clean, cuts: [{ chain: 'c1', seq: 40, problem: 'unsigned', cut: null }, { chain: 'c2', seq: 9, problem: 'unknown key', cut: { ...cut, chain: 'c2' } }] })
    expect(noted.ok).toBe(true)
    expect(noted.notes).toEqual([
      'chain c1\'s retention cut (after record 40) is not signed: records deleted from its start outside retention would not show',
      'chain c2\'s retention cut (after record 9) is signed by a key this gateway does not hold',
    ])
    const broken = summarizeVerification({ ...clean, ok: false, cuts: [{ chain: 'c1', seq: 40, problem: 'bad signature', cut }, { chain: 'c1', seq: 40, problem: 'early', cut }] })
    expect(broken.headline).toBe('✗ The chain does not verify (1,200 records checked).')
    expect(broken.breaks).toEqual([
      'chain c1\'s retention cut (after record 40) is forged: its signature does not verify',
      'chain c1\'s retention cut (after record 40) deleted records younger than retention (as new as 2026-12-05T05:00:00.000Z)',
    ])
  })

  it('no log yet: says there is nothing to verify, not that record 0 verified', () => {
    const empty: Verification = { ok: true, checked: 0, chains: 0, empty: true, ms: 0 }
    expect(summarizeVerification(empty)).toEqual({ ok: true, headline: 'The log has no records yet: nothing to verify.', breaks: [], notes: [] })
  })

  it('checkpoints without a key: the records verified, the checkpoints did not, and why', () => {
    const summary = summarizeVerification({ ...clean, ok: false, anchored: 0, uncheckable: '2 checkpoints but no key to check them: no key found' })
    expect(summary.ok).toBe(false)
    expect(summary.headline).toBe('✗ 1,200 records verified, but their checkpoints could not be checked.')
    expect(summary.breaks).toEqual(['checkpoints not checked: 2 checkpoints but no key to check them: no key found'])
  })

  it('a broken record: the chain does not verify, and the record is named', () => {
    const problem = { chain: 'c1', seq: 7, id: 'r7', time: '2026-12-02T08:00:00.000Z', reason: 'its hash does not match its content' }
    const summary = summarizeVerification({ ...clean, ok: false, checked: 7, problems: [problem], uncheckable: 'no key' })
    expect(summary.headline).toBe('✗ The chain does not verify (7 records checked).')
    expect(summary.breaks).toEqual(['record 7 of chain c1 (r7, 2026-12-02T08:00:00.000Z): its hash does not match its content', 'checkpoints not checked: no key'])
  })
})
