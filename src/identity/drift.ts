// Issuer drift: a token whose `iss` differs from a configured issuer only by a trailing slash, the
// scheme or letter case is almost always a misconfiguration, not an attack. Say exactly that.
//
// This runs on the `iss` of a token whose signature has not been checked (there is no issuer to
// check it with), so its work is linear and bounded: no regex that can backtrack (`/\/+$/` on
// 6,000 slashes and an "x" took 45 ms, on 64 KB 2 s), and no analysis of an implausibly long iss.
import { truncateClientValue } from '../errors/index.ts'

export interface Drift {
  configured: string
  differences: string[]
}

/** Longer `iss` values are not analysed: real issuers are URLs of well under 100 characters. */
export const MAX_DRIFT_ISS_CHARS = 256

/** RFC 3986 §3.1; anchored at both ends and run on the few characters before "://". */
const SCHEME = /^[a-z][a-z0-9+.-]*$/i

function parts(iss: string): { scheme: string; rest: string } {
  const at = iss.indexOf('://')
  return at > 0 && SCHEME.test(iss.slice(0, at)) ? { scheme: iss.slice(0, at), rest: iss.slice(at + 3) } : { scheme: '', rest: iss }
}

function withoutTrailingSlashes(text: string): string {
  let end = text.length
  while (end > 0 && text.charCodeAt(end - 1) === 0x2f) end--
  return text.slice(0, end)
}

/** The configured issuer that `iss` drifted from, and how, or undefined. */
export function findDrift(iss: string, configured: readonly string[]): Drift | undefined {
  if (iss.length > MAX_DRIFT_ISS_CHARS) return undefined
  const token = parts(iss)
  const tokenRest = withoutTrailingSlashes(token.rest)
  for (const candidate of configured) {
    const known = parts(candidate)
    const knownRest = withoutTrailingSlashes(known.rest)
    if (tokenRest.toLowerCase() !== knownRest.toLowerCase()) continue
    const differences: string[] = []
    const scheme = token.scheme.toLowerCase()
    if (scheme !== known.scheme.toLowerCase()) differences.push(`the scheme (${scheme || 'none'} instead of ${known.scheme.toLowerCase() || 'none'})`)
    if (token.rest.endsWith('/') !== known.rest.endsWith('/')) differences.push('a trailing slash')
    if (tokenRest !== knownRest || (scheme === known.scheme.toLowerCase() && token.scheme !== known.scheme)) differences.push('letter case')
    if (differences.length > 0) return { configured: candidate, differences }
  }
  return undefined
}

export function describeDrift(iss: string, drift: Drift): string {
  return `The token's iss "${truncateClientValue(iss)}" differs from the configured issuer "${drift.configured}" only by ${drift.differences.join(' and ')} (issuer drift): fix the issuer in the config or at the identity provider.`
}
