// Issuer drift: a token whose `iss` differs from a configured issuer only by a trailing slash, the
// scheme or letter case is almost always a misconfiguration, not an attack. Say exactly that.

export interface Drift {
  configured: string
  differences: string[]
}

function parts(iss: string): { scheme: string; rest: string } {
  const match = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(iss)
  return match ? { scheme: match[1] as string, rest: match[2] as string } : { scheme: '', rest: iss }
}

/** The configured issuer that `iss` drifted from, and how, or undefined. */
export function findDrift(iss: string, configured: readonly string[]): Drift | undefined {
  const token = parts(iss)
  const tokenRest = token.rest.replace(/\/+$/, '')
  for (const candidate of configured) {
    const known = parts(candidate)
    const knownRest = known.rest.replace(/\/+$/, '')
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
  return `The token's iss "${iss}" differs from the configured issuer "${drift.configured}" only by ${drift.differences.join(' and ')} (issuer drift): fix the issuer in the config or at the identity provider.`
}
