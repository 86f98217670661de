// What the audit page says of POST /api/audit/verify's answer: a headline and the breaks found.
// Plain functions (no Preact), so test/unit/console/verification.test.ts reads the same text.
import type { Verification } from '../../src/admin/console-shapes.ts'
import { count } from './format.ts'

export interface VerificationSummary {
  ok: boolean
  headline: string
  breaks: string[]
  /** What is worth knowing though nothing broke: chains no signed checkpoint anchors (records deleted from their end would not show), losses, restarts. */
  notes: string[]
}

export function summarizeVerification(result: Verification): VerificationSummary {
  // No log yet: nothing to check, and nothing found.
  if ('empty' in result) return { ok: true, headline: 'The log has no records yet: nothing to verify.', breaks: [], notes: [] }
  // `bouncer audit verify --strict` fails a gateway's chain among these once it is older than two checkpoint intervals.
  const notes = [
    ...result.unanchored.map(({ chain, newest }) => `chain ${chain} is not anchored to a signed checkpoint (newest record ${newest ?? 'unreadable'}): records deleted from its end would not show`),
    // `--strict` fails these: a cut an older gateway left (signed by the chain's next retention run), one written by hand, or another instance's.
    ...result.cuts.filter((c) => c.problem === 'unsigned').map((c) => `chain ${c.chain}'s retention cut (after record ${c.seq}) is not signed: records deleted from its start outside retention would not show`),
    ...result.cuts.filter((c) => c.problem === 'unknown key').map((c) => `chain ${c.chain}'s retention cut (after record ${c.seq}) is signed by a key this gateway does not hold`),
    // The chain is whole, but says records were lost before it numbered them (the spill full, every sink away).
    ...result.losses.map((l) => `chain ${l.chain} lost records (${l.time}): ${l.detail ?? 'no count recorded'}`),
    // A chain begun anew because the one before could not be continued: its record says why (what `bouncer audit verify` prints).
    ...result.restarts.map((r) => `chain ${r.chain} restarted at ${r.time} (record ${r.id}): ${r.detail ?? 'no reason recorded'}`),
  ]
  const breaks = [
    ...result.problems.map((p) => `record ${p.seq} of chain ${p.chain} (${p.id}, ${p.time}): ${p.reason}`),
    ...result.truncations.map((t) => `chain ${t.chain} truncated: ${t.missing} records missing after ${t.end}`),
    ...result.rewritten.map((r) => `chain ${r.chain} rewritten at ${r.id}`),
    ...(result.forged.length > 0 ? [`${result.forged.length} forged checkpoint(s)`] : []),
    ...result.cuts.filter((c) => c.problem === 'bad signature').map((c) => `chain ${c.chain}'s retention cut (after record ${c.seq}) is forged: its signature does not verify`),
    ...result.cuts.filter((c) => c.problem === 'early').map((c) => `chain ${c.chain}'s retention cut (after record ${c.seq}) deleted records younger than retention (as new as ${c.cut?.newest})`),
    ...(result.uncheckable ? [`checkpoints not checked: ${result.uncheckable}`] : []),
  ]
  if (result.ok) {
    const chains = `${result.chains} chain${result.chains === 1 ? '' : 's'}`
    return { ok: true, headline: `✓ Verified through record ${count(result.checked)} (${chains}, ${result.anchored} anchored to a signed checkpoint) in ${result.ms} ms.`, breaks, notes }
  }
  // Only the checkpoints went unchecked (no key to check them with): every record's hash did verify.
  if (breaks.length === 1 && result.uncheckable !== null) {
    return { ok: false, headline: `✗ ${count(result.checked)} records verified, but their checkpoints could not be checked.`, breaks, notes }
  }
  return { ok: false, headline: `✗ The chain does not verify (${count(result.checked)} records checked).`, breaks, notes }
}
