// Parsers for the value types SPEC defines (durations, rates, CIDRs, globs, listen addresses).
// Each returns a result or a message; the schema turns messages into positioned diagnostics.
import { BlockList, isIP } from 'node:net'

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string }

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const
const DURATION = /^(\d+)(ms|s|m|h|d)$/
/**
 * 100 years. Longer has no use, and unbounded digits gave 1e20 ms or Infinity (found by fuzzing):
 * now + Infinity is no time, and a retention or a tolerance of Infinity silently means "never".
 */
export const MAX_DURATION_MS = 36_500 * 86_400_000

/** `500ms`, `30s`, `5m`, `1h`, `1d` → milliseconds, at most MAX_DURATION_MS. */
export function parseDuration(text: string): Parsed<number> {
  const match = DURATION.exec(text.trim())
  if (!match) return { ok: false, message: `invalid duration "${text}": write it like 500ms, 30s, 5m, 1h or 1d` }
  const ms = Number(match[1]) * DURATION_UNITS_MS[match[2] as keyof typeof DURATION_UNITS_MS]
  if (ms > MAX_DURATION_MS) return { ok: false, message: `invalid duration "${text}": at most 36500d (100 years)` }
  return { ok: true, value: ms }
}

const SIZE_UNITS_MB = { MB: 1, GB: 1024 } as const
const SIZE = /^(\d{1,6})\s*(MB|GB)$/

/** `128MB`, `1GB` → megabytes (MiB, as Lambda's `memory` means them). */
export function parseSize(text: string): Parsed<number> {
  const match = SIZE.exec(text.trim())
  if (!match) return { ok: false, message: `invalid size "${text}": write it like 128MB or 1GB` }
  return { ok: true, value: Number(match[1]) * SIZE_UNITS_MB[match[2] as keyof typeof SIZE_UNITS_MB] }
}

export interface Rate {
  count: number
  periodMs: number
  /** The period as a word (`N/h`: hour), for messages in the config's own unit: "5 requests per hour". */
  per: RatePeriod
  /** As written, for headers and messages. */
  text: string
}

/** A rate's units, by the letter after its `/`. */
const RATE_PERIODS = { s: 'second', m: 'minute', h: 'hour', d: 'day' } as const
export type RatePeriod = (typeof RATE_PERIODS)[keyof typeof RATE_PERIODS]

const RATE = /^(\d+)\/(s|m|h|d)$/
/**
 * N (and a rate's burst) is sent in RateLimit-Policy as an RFC 8941 integer: at most 15 digits.
 * Unbounded, 2^53 + 1 lost its last digit and 400 digits gave Infinity, "q=Infinity" (found by fuzzing).
 */
export const MAX_RATE_COUNT = 999_999_999_999_999

/** `N/s`, `N/m`, `N/h`, `N/d`, N from 1 to MAX_RATE_COUNT. */
export function parseRate(text: string): Parsed<Rate> {
  const match = RATE.exec(text.trim())
  const count = Number(match?.[1])
  if (!match || !(count > 0 && count <= MAX_RATE_COUNT)) {
    return { ok: false, message: `invalid rate "${text}": write it like 10/s, 600/m, 1000/h or 10000/d (N from 1 to 999999999999999)` }
  }
  const unit = match[2] as keyof typeof RATE_PERIODS
  return { ok: true, value: { count, periodMs: DURATION_UNITS_MS[unit], per: RATE_PERIODS[unit], text: text.trim() } }
}

/**
 * The fastest rate a limit keeps, per second (100000/s, 6000000/m, 360000000/h, 8640000000/d): the
 * stores keep a rate's interval in steps of about a microsecond (1/1024 ms in memory, 1 µs in Redis),
 * so at 10 µs an interval is off by at most 5%. Past it the error grew with the rate: 300000/s let
 * 341,333 a second through, 2000000/s a million, and 999999999999999/s about a million (probe finding).
 */
export const MAX_RATE_PER_SECOND = 100_000

/**
 * The emission interval rounded to a 1/1024 ms (under a microsecond): a binary fraction, so that
 * epoch milliseconds (a double that large is a multiple of 1/4096 ms) plus whole intervals add up exactly. 6/s as 166.666… ms could
 * not, and `tat + I - B × I` landed a hair past `now`: a fresh key lost one request of its burst
 * and said r=B-2 (the Redis store, in whole microseconds, never did). The in-process stores' unit
 * (limits/route-limits.ts).
 */
export function binaryInterval(ms: number): number {
  return Math.max(1, Math.round(ms * 1024)) / 1024
}

/** Why a `rate` of a limit is faster than the stores can keep it, or null. A quota's N is a count, not an interval: it has no such bound. */
export function rateTooFast(rate: Rate): string | null {
  if (rate.count * 1000 <= MAX_RATE_PER_SECOND * rate.periodMs) return null
  return `rate ${rate.text} is faster than limits can keep to within 5% (their clocks count microseconds): at most 100000/s, 6000000/m, 360000000/h or 8640000000/d; a limit that fast limits nothing a gateway serves, so remove it or lower it`
}

const PERCENT = /^(\d{1,3})(\.\d{1,2})?%$/

/** `20%`, `12.5%` (0 to 100) → a ratio from 0 to 1. */
export function parsePercent(text: string): Parsed<number> {
  const match = PERCENT.exec(text.trim())
  const value = match ? Number(`${match[1]}${match[2] ?? ''}`) : Number.NaN
  if (!match || value > 100) return { ok: false, message: `invalid percentage "${text}": write it like 20% (0% to 100%)` }
  return { ok: true, value: value / 100 }
}

export interface Cidr {
  address: string
  prefix: number
  family: 'ipv4' | 'ipv6'
  text: string
}

/** `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128). */
export function parseCidr(text: string): Parsed<Cidr> {
  const [address = '', prefixText, extra] = text.trim().split('/')
  const version = isIP(address)
  if (version === 0 || extra !== undefined) return { ok: false, message: `invalid CIDR "${text}"` }
  const max = version === 4 ? 32 : 128
  const prefix = prefixText === undefined ? max : Number(prefixText)
  if (!/^\d+$/.test(prefixText ?? String(max)) || prefix > max) {
    return { ok: false, message: `invalid CIDR "${text}": the prefix length must be 0 to ${max}` }
  }
  return { ok: true, value: { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6', text: text.trim() } }
}

/** A set of CIDRs; `contains` takes an address as Node reports it (IPv4-mapped IPv6 included). */
export interface AddressSet {
  readonly size: number
  contains(address: string): boolean
}

export function addressSet(cidrs: readonly Cidr[]): AddressSet {
  const list = new BlockList()
  for (const cidr of cidrs) list.addSubnet(cidr.address, cidr.prefix, cidr.family)
  return {
    size: cidrs.length,
    contains(address: string): boolean {
      if (cidrs.length === 0) return false
      const plain = unmapIpv4(address)
      const family = isIP(plain)
      if (family === 0) return false
      return list.check(plain, family === 4 ? 'ipv4' : 'ipv6')
    },
  }
}

/** `::ffff:10.1.2.3` → `10.1.2.3`, so IPv4 rules apply to IPv4 clients on a dual-stack socket. */
export function unmapIpv4(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}

export interface Glob {
  text: string
  /** Literal globs compare as strings; only globs with wildcards pay for a RegExp. */
  matches(value: string): boolean
  readonly literal: boolean
}

const GLOB_FORBIDDEN = /[[\]{}]/

/** `*` matches any run of characters (including none), `?` exactly one (a code point). Nothing else is special. */
export function parseGlob(text: string): Parsed<Glob> {
  if (text.length === 0) return { ok: false, message: 'invalid glob: empty' }
  if (GLOB_FORBIDDEN.test(text)) {
    return { ok: false, message: `invalid glob "${text}": only * and ? are wildcards ([ ] { } are not supported)` }
  }
  if (!text.includes('*') && !text.includes('?')) {
    return { ok: true, value: { text, literal: true, matches: (value) => value === text } }
  }
  const pieces = text.split('*')
  if (!text.includes('?')) return { ok: true, value: { text, literal: false, matches: (value) => matchesPieces(pieces, value) } }
  // `?` is one character: a code point, of which an astral-plane one (an emoji) is two UTF-16 code
  // units. Read by code units, `user-?` missed `user-😀` and `user-??` matched it (a probe).
  const codePointPieces = pieces.map((piece) => Array.from(piece))
  return { ok: true, value: { text, literal: false, matches: (value) => (SURROGATE.test(value) ? matchesCodePoints(codePointPieces, Array.from(value)) : matchesPieces(pieces, value)) } }
}

const SURROGATE = /[\uD800-\uDFFF]/

const QUESTION_MARK = 0x3f

/**
 * The pieces between the `*`s, found in order: the first at the start, the last at the end, each
 * one between at its leftmost place (leftmost never loses a match that a later place would make).
 * At most the value's length × the glob's, with no backtracking: the RegExp this replaces
 * (`^.*a.*b$` for `*a*b`) backtracked quadratically, 2.6 s for a 64 KB value, and more with each
 * `*`; claim values are the caller's to choose (found by fuzzing). Per request, for trust rules and
 * claim conditions: 15–100 ns for the usual globs, as fast as the RegExp was (Node 24, 2026-12).
 */
function matchesPieces(pieces: readonly string[], value: string): boolean {
  const first = pieces[0] as string
  if (pieces.length === 1) return value.length === first.length && pieceAt(first, value, 0)
  const last = pieces[pieces.length - 1] as string
  const end = value.length - last.length
  if (end < first.length || !pieceAt(first, value, 0) || !pieceAt(last, value, end)) return false
  let from = first.length
  for (let i = 1; i < pieces.length - 1; i++) {
    const piece = pieces[i] as string
    const at = findPiece(piece, value, from, end)
    if (at === -1) return false
    from = at + piece.length
  }
  return true
}

/** Does `piece` (where `?` stands for any one character) stand in `value` at `at`? */
function pieceAt(piece: string, value: string, at: number): boolean {
  for (let i = 0; i < piece.length; i++) {
    const c = piece.charCodeAt(i)
    if (c !== QUESTION_MARK && c !== value.charCodeAt(at + i)) return false
  }
  return true
}

/** The leftmost place at or after `from` where `piece` stands and ends by `end`, or -1. */
function findPiece(piece: string, value: string, from: number, end: number): number {
  if (!piece.includes('?')) {
    const at = value.indexOf(piece, from)
    return at !== -1 && at + piece.length <= end ? at : -1
  }
  for (let at = from; at + piece.length <= end; at++) if (pieceAt(piece, value, at)) return at
  return -1
}

/**
 * matchesPieces for a value holding a character of two code units, read as code points (each
 * piece too): the rare case kept apart, so the usual one stays on strings (one shape, no arrays).
 */
function matchesCodePoints(pieces: readonly (readonly string[])[], value: readonly string[]): boolean {
  const at = (piece: readonly string[], from: number) => piece.every((c, i) => c === '?' || c === value[from + i])
  const first = pieces[0] as readonly string[]
  if (pieces.length === 1) return value.length === first.length && at(first, 0)
  const last = pieces[pieces.length - 1] as readonly string[]
  const end = value.length - last.length
  if (end < first.length || !at(first, 0) || !at(last, end)) return false
  let from = first.length
  for (let i = 1; i < pieces.length - 1; i++) {
    const piece = pieces[i] as readonly string[]
    while (from + piece.length <= end && !at(piece, from)) from++
    if (from + piece.length > end) return false
    from += piece.length
  }
  return true
}

export interface ListenAddress {
  host: string
  port: number
  text: string
}

/** `127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:80`. Port 0 picks a free port. */
export function parseListen(text: string): Parsed<ListenAddress> {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim())
  const host = match?.[1] ?? match?.[2]
  const port = Number(match?.[3])
  if (!match || host === undefined || port > 65535) {
    return { ok: false, message: `invalid listen address "${text}": write it like 127.0.0.1:8080 or [::1]:8080` }
  }
  return { ok: true, value: { host, port, text: text.trim() } }
}

/** The URL form of a listener, for the "listening on" lines and for clients. */
export function listenUrl(host: string, port: number, scheme: 'http' | 'https' = 'http'): string {
  return `${scheme}://${isIP(host) === 6 ? `[${host}]` : host}:${port}`
}

/** Route ids a list of globs selects: literal globs by lookup, wildcards by a scan. */
export function routesSelectedBy(globs: readonly Glob[], routeIds: readonly string[], known: ReadonlySet<string>): string[] {
  const selected = new Set<string>()
  for (const glob of globs) {
    if (glob.literal) {
      if (known.has(glob.text)) selected.add(glob.text)
    } else {
      for (const id of routeIds) if (glob.matches(id)) selected.add(id)
    }
  }
  return [...selected]
}
