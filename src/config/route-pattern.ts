// Route path syntax (SPEC routes[].path): literal segments, `:param` segments, a trailing `/*`.
import type { Parsed } from './values.ts'

export type PatternSegment =
  | { kind: 'literal'; value: string; /** As written in the config (escapes kept). */ raw: string }
  | { kind: 'param'; name: string }
  | { kind: 'wildcard' }

export interface RoutePattern {
  text: string
  /** After the leading `/`: `/` is [''], `/a/` is ['a', '']. Literals are decoded. */
  segments: PatternSegment[]
  params: string[]
  wildcard: boolean
}

const PARAM = /^:([A-Za-z_][A-Za-z0-9_]*)$/
// RFC 3986 pchar, without `*` (reserved for the wildcard); a `%` must start an escape of two hex
// digits. Two checks without an alternation: `(?:[…]|%XX)*` recursed once per character, and a
// 10 MB segment overflowed the stack, reported as "the file nests too deeply" (found by an
// adversarial probe).
const LITERAL_CHARS = /^[A-Za-z0-9\-._~!$&'()+,;=:@%]*$/
const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})/
const isLiteral = (part: string): boolean => LITERAL_CHARS.test(part) && !BAD_ESCAPE.test(part)

export function parseRoutePattern(text: string): Parsed<RoutePattern> {
  if (!text.startsWith('/')) return { ok: false, message: `a path starts with "/": "${text}"` }
  const raw = text.slice(1).split('/')
  const segments: PatternSegment[] = []
  const params: string[] = []
  for (let i = 0; i < raw.length; i++) {
    const part = raw[i] as string
    const last = i === raw.length - 1
    if (part === '*') {
      if (!last) return { ok: false, message: `"*" may only end a path: "${text}"` }
      segments.push({ kind: 'wildcard' })
      continue
    }
    if (part.startsWith(':')) {
      const match = PARAM.exec(part)
      if (!match) return { ok: false, message: `invalid parameter "${part}": write :name (letters, digits, _)` }
      const name = match[1] as string
      if (params.includes(name)) return { ok: false, message: `parameter ":${name}" appears twice` }
      params.push(name)
      segments.push({ kind: 'param', name })
      continue
    }
    if (part === '' && !last) return { ok: false, message: `empty segment ("//") in "${text}"` }
    if (!isLiteral(part)) return { ok: false, message: `invalid characters in segment "${part}"` }
    let value: string
    try {
      value = decodeURIComponent(part)
    } catch {
      return { ok: false, message: `invalid percent-encoding in segment "${part}"` }
    }
    if (value === '.' || value === '..' || value.includes('/')) {
      return { ok: false, message: `segment "${part}" is not allowed in a path` }
    }
    segments.push({ kind: 'literal', value, raw: part })
  }
  return { ok: true, value: { text, segments, params, wildcard: segments.at(-1)?.kind === 'wildcard' } }
}

/** An `upstream_path` may use the route's params and, when the route has one, its wildcard. */
export function checkRewrite(rewrite: RoutePattern, route: RoutePattern): string | undefined {
  for (const name of rewrite.params) {
    if (!route.params.includes(name)) return `":${name}" is not a parameter of the route path ${route.text}`
  }
  if (rewrite.wildcard && !route.wildcard) return `"*" needs a route path that ends in "/*"`
  return undefined
}

/**
 * `İ` (U+0130) lower-cases to `i` and a combining dot above in JavaScript (full case mapping), but to
 * a plain `i` in Go (simple case mapping): Caddy's `path` matcher reads `/admİn` as `/admin`, so
 * the gateway must too, or a public catch-all takes what Caddy serves as its admin handler.
 */
const DOTTED_I = 'i\u0307'

/**
 * A segment as an upstream that normalizes to NFKC before it routes reads it (fullwidth `ａdmin` is
 * `admin`), for routes matched case-sensitively (`server.case_sensitive_paths`); an ASCII segment
 * comes back as is, unallocated.
 */
export function compatiblePathSegment(segment: string): string {
  for (let i = 0; i < segment.length; i++) if (segment.charCodeAt(i) >= 128) return segment.normalize('NFKC')
  return segment
}

/**
 * The case-insensitive form of a path segment (routes match case-insensitively unless
 * `server.case_sensitive_paths`): Express and ASP.NET match `/ADMIN` as `/admin`. ASP.NET
 * upper-cases to compare, so a non-ASCII segment is upper-cased first: `ı` (dotless i) and `ſ`
 * (long s) then fold to `i` and `s` as they do there. A non-ASCII segment is read in NFKC first, as
 * an upstream that normalizes before it routes reads it: `/Ａdmin` (fullwidth) is `/admin`. Per
 * request, for each segment: a segment with no upper-case letter comes back as is, unallocated
 * (measured: as fast as toLowerCase(), which allocates a copy every time, 2026-12, Node 24).
 */
export function foldPathCase(segment: string): string {
  let upper = false
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i)
    if (c >= 128) return segment.normalize('NFKC').toUpperCase().toLowerCase().replaceAll(DOTTED_I, 'i')
    if (c >= 0x41 && c <= 0x5a) upper = true
  }
  return upper ? segment.toLowerCase() : segment
}
