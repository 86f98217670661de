// Claim conditions, shared by trust rules (roles) and statement conditions (policies): each named
// claim must match one of the globs; a list-valued claim (groups, roles) must contain a match.
import { parseGlob, type ClaimConditions, type Glob } from '../config/index.ts'
import { truncateClientValue } from '../errors/index.ts'
import { claimValue } from '../request/index.ts'

export interface ClaimCondition {
  name: string
  globs: readonly Glob[]
  /** `scope` and `scp`: a string is a space-separated list (RFC 9068 §2.2.3; Entra ID's `scp`). */
  spaceSeparated: boolean
}

/**
 * OAuth writes scopes as one string, `"openid reports:admin"`: read as a whole only, a condition on
 * one scope held no token with two, so a deny on `scope: reports:admin` let such a token through
 * (found by an adversarial probe). The whole string still matches, as configs written for it expect.
 */
const SPACE_SEPARATED_CLAIMS: ReadonlySet<string> = new Set(['scope', 'scp'])

export function compileClaimConditions(conditions: ClaimConditions | undefined): ClaimCondition[] | null {
  if (!conditions) return null
  const compiled = Object.entries(conditions).map(([name, value]) => ({ name, globs: Array.isArray(value) ? value : [value], spaceSeparated: SPACE_SEPARATED_CLAIMS.has(name) }))
  return compiled.length === 0 ? null : compiled
}

function scalarMatches(value: unknown, globs: readonly Glob[]): boolean {
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return false
  const text = String(value)
  for (const glob of globs) if (glob.matches(text)) return true
  return false
}

function claimMatches(value: unknown, condition: ClaimCondition): boolean {
  const { globs } = condition
  if (Array.isArray(value)) {
    for (const item of value) if (scalarMatches(item, globs)) return true
    return false
  }
  if (scalarMatches(value, globs)) return true
  if (!condition.spaceSeparated || typeof value !== 'string' || !value.includes(' ')) return false
  for (const item of value.split(' ')) if (item !== '' && scalarMatches(item, globs)) return true
  return false
}

/**
 * The first condition the claims fail, or null when all hold. `withheldHolds`: a claim the token
 * points to instead of carrying (OpenID Connect Core §5.6.2 `_claim_names`; Entra ID's groups past
 * 200) holds: for a deny, whose conditions unknown must not clear (the probe found such a member of
 * `contractors` let past a deny on it).
 */
export function failedClaim(conditions: readonly ClaimCondition[] | null, claims: Readonly<Record<string, unknown>>, withheldHolds = false): ClaimCondition | null {
  if (conditions === null) return null
  for (const condition of conditions) {
    const value = claimValue(claims, condition.name)
    if (claimMatches(value, condition)) continue
    if (withheldHolds && value === undefined && isWithheld(claims, condition.name)) continue
    return condition
  }
  return null
}

/**
 * For explanations: the conditions a deny holds only because the token withholds their claim
 * (failedClaim's `withheldHolds`): bouncer explain showed such a deny as matching with no word why.
 */
export function withheldHeld(conditions: readonly ClaimCondition[] | null, claims: Readonly<Record<string, unknown>>): string[] {
  return (conditions ?? []).filter((c) => claimValue(claims, c.name) === undefined && isWithheld(claims, c.name)).map((c) => c.name)
}

/** A claim whose value the token names another source for (`_claim_names`), not carried in it. */
function isWithheld(claims: Readonly<Record<string, unknown>>, name: string): boolean {
  const names = claims._claim_names
  return typeof names === 'object' && names !== null && Object.hasOwn(names, name)
}

export function describeClaimMismatch(condition: ClaimCondition, claims: Readonly<Record<string, unknown>>): string {
  const value = claimValue(claims, condition.name)
  const wanted = condition.globs.map((g) => JSON.stringify(g.text)).join(' or ')
  if (value === undefined) return `claim ${condition.name} is missing (wanted ${wanted})`
  // Cut as a detail is: a token's groups of 10,000 entries were repeated whole in every trust
  // rule's and statement's line of bouncer explain (270 KB for three rules, a probe).
  const values = Array.isArray(value) ? ` (${value.length} values)` : ''
  const texts = (Array.isArray(value) ? value : condition.spaceSeparated && typeof value === 'string' ? [value, ...value.split(' ')] : [value])
    .filter((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean').map(String)
  return `claim ${condition.name}${values} is ${truncateClientValue(JSON.stringify(value))}, not ${wanted}${letterCaseNote(condition.globs, texts)}`
}

/**
 * Said of a mismatch that letter case alone makes. Claims and subjects match as written (SPEC: a
 * claim must "equal"), but providers keep the case an address was typed in (Entra ID's upn and
 * email): explain said only that `Bob@Contractor.example` is not `*@contractor.example` (a probe).
 * For explanations only: each glob is parsed again, folded.
 */
export function letterCaseNote(globs: readonly Glob[], values: readonly string[]): string {
  for (const glob of globs) {
    const folded = parseGlob(glob.text.toLowerCase())
    if (folded.ok && values.some((v) => folded.value.matches(v.toLowerCase()))) return ' (only letter case differs: claims and subjects match case-sensitively)'
  }
  return ''
}
