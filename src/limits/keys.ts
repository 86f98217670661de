// What a limit counts by (SPEC limits[].key). A limit's budget is shared by every route that names
// it: attach two limits to get one budget per route.
//
// A key is the limit's own prefix (index.ts) and one of these. Every part a caller or an identity
// provider chooses is typed, so no two different callers can spell the same key:
//   p:<issuer length>:<issuer>:<value>   principal (issuer names may hold `:`), and actor: the agent
//                                        acting for a user, counted as that agent's own principal, so
//                                        its direct calls and the ones it makes for users share one
//                                        budget; a request without an actor counts by its principal
//   r:<role>,<role>                      role (role names hold no `,`)
//   route:<id>                           route
//   ip:<address>                         ip, and identity keys on a public route (address-key.ts)
//   claim:<value>   h:<value>            claim:NAME, header:NAME
// where <value> is `s:<text>` (a string), `j:<JSON>` (a number, boolean, array or object: 1 is not
// "1"), `-` (absent: every caller without it shares that one budget, and no sent value reaches it),
// or `#:<sha-256>` of the typed value when it is long: a caller cannot make the store hold a
// header's 16 KB per key, so max_keys bounds its memory (under 200 bytes a key, measured).
import { hash } from 'node:crypto'
import { claimValue, type RequestFacts } from '../request/index.ts'
import { addressKey } from './address-key.ts'

export type KeySource =
  | { kind: 'principal' | 'actor' | 'role' | 'route' | 'ip'; ipPrefixV6: number }
  | { kind: 'claim'; name: string; ipPrefixV6: number }
  | { kind: 'header'; name: string; ipPrefixV6: number }

export function parseKeySource(text: string, ipPrefixV6: number): KeySource {
  if (text.startsWith('claim:')) return { kind: 'claim', name: text.slice(6), ipPrefixV6 }
  if (text.startsWith('header:')) return { kind: 'header', name: text.slice(7).toLowerCase(), ipPrefixV6 }
  return { kind: text as 'principal' | 'actor' | 'role' | 'route' | 'ip', ipPrefixV6 }
}

/** A caller with no identity (a public route) is counted by its address for identity-based keys. */
/** What a key is made of, of the request. */
export type LimitedRequest = Pick<RequestFacts, 'identity' | 'roles' | 'clientIp' | 'route' | 'headers'>

export function keyValue(source: KeySource, ctx: LimitedRequest): string {
  const identity = ctx.identity
  switch (source.kind) {
    case 'principal':
      return identity ? `p:${identity.issuerName.length}:${identity.issuerName}:${typedString(identity.sub)}` : ipKey(source, ctx)
    case 'actor': {
      const who = identity?.actor ?? identity
      return who ? `p:${who.issuerName.length}:${who.issuerName}:${typedString(who.sub)}` : ipKey(source, ctx)
    }
    case 'role':
      return identity ? `r:${ctx.roles.join(',')}` : ipKey(source, ctx)
    case 'route':
      return `route:${ctx.route?.id ?? ''}`
    case 'ip':
      return ipKey(source, ctx)
    case 'claim':
      return identity ? `claim:${typedValue(claimValue(identity.claims, source.name))}` : ipKey(source, ctx)
    case 'header': {
      const forward = ctx.headers?.forward ?? []
      for (let i = 0; i < forward.length; i += 2) if (forward[i] === source.name) return `h:${typedString(forward[i + 1] as string)}`
      return `h:${ABSENT}`
    }
  }
}

function ipKey(source: KeySource, ctx: LimitedRequest): string {
  return `ip:${addressKey(ctx.clientIp, source.ipPrefixV6)}`
}

const ABSENT = '-'
/** Longer values are hashed: most client ids, tenants and subjects are shorter and stay readable. */
const MAX_PLAIN_LENGTH = 64

/** A claim's value: null counts as absent (the provider says "none"), as a missing claim does. */
function typedValue(value: unknown): string {
  if (value === undefined || value === null) return ABSENT
  if (typeof value === 'string') return typedString(value)
  return bounded(`j:${JSON.stringify(value)}`)
}

function typedString(value: string): string {
  // A lone surrogate would reach Redis as U+FFFD (UTF-8), merging different strings: hash those.
  return value.length > MAX_PLAIN_LENGTH || !value.isWellFormed() ? hashed(`s:${value}`) : `s:${value}`
}

function bounded(typed: string): string {
  return typed.length > MAX_PLAIN_LENGTH + 2 ? hashed(typed) : typed
}

/** UTF-16 code units in, so every JS string (lone surrogates included) has its own digest. */
function hashed(typed: string): string {
  return `#:${hash('sha256', Buffer.from(typed, 'utf16le'), 'base64url')}`
}
