// What a limit counts by (SPEC limits[].key). A limit's budget is shared by every route that names
// it: attach two limits to get one budget per route.
import { claimValue } from '../access/claims.ts'
import type { RequestContext } from '../gateway/context.ts'

export type KeySource =
  | { kind: 'principal' | 'role' | 'route' | 'ip' }
  | { kind: 'claim'; name: string }
  | { kind: 'header'; name: string }

export function parseKeySource(text: string): KeySource {
  if (text.startsWith('claim:')) return { kind: 'claim', name: text.slice(6) }
  if (text.startsWith('header:')) return { kind: 'header', name: text.slice(7).toLowerCase() }
  return { kind: text as 'principal' | 'role' | 'route' | 'ip' }
}

/** A caller with no identity (a public route) is counted by its address for identity-based keys. */
export function keyValue(source: KeySource, ctx: RequestContext): string {
  const identity = ctx.identity
  switch (source.kind) {
    case 'principal':
      return identity ? `p:${identity.issuerName}:${identity.sub}` : `ip:${ctx.clientIp}`
    case 'role':
      return identity ? `r:${ctx.roles.join(',')}` : `ip:${ctx.clientIp}`
    case 'route':
      return `route:${ctx.route?.id ?? ''}`
    case 'ip':
      return `ip:${ctx.clientIp}`
    case 'claim': {
      if (!identity) return `ip:${ctx.clientIp}`
      const value = claimValue(identity.claims, source.name)
      return value === undefined ? 'claim:(none)' : `claim:${typeof value === 'string' ? value : JSON.stringify(value)}`
    }
    case 'header': {
      const forward = ctx.headers?.forward ?? []
      for (let i = 0; i < forward.length; i += 2) if (forward[i] === source.name) return `h:${forward[i + 1] as string}`
      return 'h:(none)'
    }
  }
}
