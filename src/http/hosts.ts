// `server.hosts`: the names clients may reach the gateway by. X-Forwarded-Host is what upstream
// applications build absolute URLs from (redirects, password-reset links, OAuth callbacks), so the
// gateway vouches for a client's Host only when it is one of these (Host header poisoning).

export interface HostPattern {
  text: string
  /** Lower-case name; for `*.example.com`, the suffix `example.com`. */
  name: string
  /** `*.` in front: one or more labels before `name`. */
  wildcard: boolean
  /** Only this port, or any port (null). */
  port: string | null
}

export type HostPatternResult = { ok: true; value: HostPattern } | { ok: false; message: string }

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?'
const DNS_NAME = new RegExp(`^(?:${LABEL}\\.)*${LABEL}$`)
const LABELS = new RegExp(`^(?:${LABEL}\\.)*${LABEL}\\.$`)
const IPV6_LITERAL = /^\[[0-9a-f:.]+\]$/
const PORT = /^\d{1,5}$/

/** A TCP port, written in decimal: 0 to 65535. */
const isPort = (text: string) => PORT.test(text) && Number(text) <= 65_535

/** `api.example.com`, `*.example.com`, `api.example.com:8443`, `10.0.0.5`, `[::1]:8080` (any case). */
export function parseHostPattern(text: string): HostPatternResult {
  const split = splitHost(text.trim().toLowerCase())
  const wildcard = split?.name.startsWith('*.') ?? false
  const name = wildcard ? (split as { name: string }).name.slice(2) : split?.name
  const valid = name !== undefined && (DNS_NAME.test(name) || (!wildcard && IPV6_LITERAL.test(name)))
  if (!split || !valid || (split.port !== null && !isPort(split.port))) {
    return { ok: false, message: `invalid host "${text}": write it like api.example.com, *.example.com or api.example.com:8443` }
  }
  return { ok: true, value: { text: text.trim(), name: name as string, wildcard, port: split.port } }
}

/** `name[:port]`, with `[v6]` literals kept whole. Null when there is nothing before the port. */
function splitHost(host: string): { name: string; port: string | null } | null {
  const close = host.startsWith('[') ? host.indexOf(']') : -1
  const colon = host.indexOf(':', close === -1 ? 0 : close)
  if (colon === -1) return host === '' ? null : { name: host, port: null }
  return colon === 0 ? null : { name: host.slice(0, colon), port: host.slice(colon + 1) }
}

export interface HostAllowList {
  readonly patterns: readonly HostPattern[]
  /** Whether a request's Host header names one of the patterns (case-insensitive). */
  matches(host: string): boolean
}

export function hostAllowList(patterns: readonly HostPattern[]): HostAllowList {
  return {
    patterns,
    matches(host) {
      if (patterns.length === 0) return false
      const split = splitHost(host.toLowerCase())
      // A port no TCP connection has (99999) is no host of the list's (the front-door probe): the
      // redirect URIs and origins made from it would name an address nobody can reach.
      if (split === null || (split.port !== null && !isPort(split.port))) return false
      // RFC 1034 §3.1: `api.example.com.` is the same name written whole (browsers keep the dot in
      // Host). Unknown to the list, it got its upstream no X-Forwarded-Host, which then built its
      // redirects on its own internal address (a probe). One dot, after a name.
      const name = split.name.length > 1 && split.name.endsWith('.') ? split.name.slice(0, -1) : split.name
      return patterns.some((pattern) => hostMatches(pattern, name, split.port))
    },
  }
}

function hostMatches(pattern: HostPattern, name: string, port: string | null): boolean {
  if (pattern.port !== null && pattern.port !== port) return false
  if (!pattern.wildcard) return name === pattern.name
  // What stands for `*` must itself be whole labels: `a.b.example.com`, never `.example.com` or `evil-example.com`.
  const prefixLength = name.length - pattern.name.length
  return prefixLength > 1 && name.endsWith(pattern.name) && LABELS.test(name.slice(0, prefixLength))
}

/**
 * The host the gateway vouches for to an upstream or a function (X-Forwarded-Host, which they
 * build redirects and reset links from): with server.hosts listing names, a trusted proxy's
 * X-Forwarded-Host or else the request's Host, whichever one of them names (a proxy that passes a
 * client's X-Forwarded-Host on must not choose it); with none listed, a trusted proxy's as it sent it.
 */
export function vouchedHost(host: string | undefined, forwardedHost: string | undefined, viaTrustedProxy: boolean, publicHosts: HostAllowList): string | undefined {
  const forwarded = viaTrustedProxy ? forwardedHost : undefined
  if (publicHosts.patterns.length === 0) return forwarded
  if (forwarded !== undefined && publicHosts.matches(forwarded)) return forwarded
  return host !== undefined && publicHosts.matches(host) ? host : undefined
}
