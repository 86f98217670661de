// The path canonicaliser (src/http/request-target.ts) and the router matching its output.
import fc from 'fast-check'
import { parseRoutePattern } from '../../../src/config/index.ts'
import { compatiblePathSegment, foldPathCase } from '../../../src/config/route-pattern.ts'
import type { GatewayError } from '../../../src/errors/index.ts'
import { parseTarget, type RequestTarget } from '../../../src/http/request-target.ts'
import { createRouter, EXPLICIT_ONLY_METHODS, type RoutableRoute } from '../../../src/gateway/router.ts'
import { anyText, expectGatewayError, fuzzTarget, hasControlCharacter, LARGE_INPUT_CPU_MS, largeInput, loneSurrogate, refusedWith, withinCpu } from '../lib.ts'

const HOST = 'gw.example'

/** What makes paths tricky: separators, dots, escapes (of every kind, nested, broken), parameters, case, whitespace. */
const TRICKY = [
  'a', 'B', 'I', 'i', '.', '..', '/', '//', '\\', ';', '=', ',', '~', '@', ':', '*', '?', '#', '&', '+', '$', "'",
  '%', '%25', '%2e', '%2E', '%2f', '%2F', '%5c', '%5C', '%3b', '%3B', '%3D', '%20', '%09', '%7e', '%7E', '%41', '%61',
  '%00', '%0a', '%0D', '%7F', '%23', '%3F', '%252e', '%252F', '%2525', '%25%32%65', '%zz', '%4', '%C4%B1', '%C3%A9',
  '%C2%A0', '%C2%85', '%E3%80%80', '%EF%BB%BF', '%C0%AF', '%E0%A4', '%ED%A0%80', ' ', '\t', '"', '{', '|', '^', '`',
  '\u00e9', '\u0131', '\u017f', '\u00a0', '\u0085', '\u3000', '\ufeff', '\u{1f600}', 'x=1', 'jsessionid=1',
]

const piece = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...TRICKY) },
  { weight: 1, arbitrary: anyText },
  { weight: 1, arbitrary: loneSurrogate },
)

const pathText = fc.array(piece, { maxLength: 14 }).map((pieces) => `/${pieces.join('')}`)

/** Origin-form mostly; absolute-form for this host or another; anything at all sometimes. */
const requestTarget = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(pathText, fc.option(anyText, { nil: undefined })).map(([path, query]) => (query === undefined ? path : `${path}?${query}`)) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(`http://${HOST}`, `HTTPS://GW.Example`, 'http://evil.example', 'http:/', 'http://'), pathText).map(([origin, path]) => `${origin}${path}`) },
  { weight: 1, arbitrary: anyText },
)

// RFC 3986 pchar (without `%`): what may stand raw in a canonical segment.
const PCHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]$/
const UNRESERVED = /^[A-Za-z0-9\-._~]$/
// A trailing character that IIS or Windows would trim (JavaScript's \s has no U+0085).
const TRIMMED_AT_END = /[.\s\u0085]$/
// What an upstream that decodes again must not find (paths.ts NESTED_REFUSED), control characters aside.
const REFUSED_WHEN_NESTED = /[./\\;?#]/

/** Every canonical-path rule of SPEC "On the wire" and README "Path rules", checked on the output alone. */
function checkCanonical(target: RequestTarget): void {
  const { path, parts, segments, pathParams } = target
  if (!path.startsWith('/')) throw new Error(`canonical path ${JSON.stringify(path)} does not start with /`)
  if (JSON.stringify(parts) !== JSON.stringify(path.split('/'))) throw new Error('parts are not the canonical path split at /')
  if (parts.length !== segments.length + 1) throw new Error('parts and segments do not line up')
  let sawParameters = false
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i] as string
    if (part === '' && i !== parts.length - 1) throw new Error(`an empty segment inside ${path}`)
    for (let at = 0; at < part.length; at++) {
      const c = part[at] as string
      if (c === '%') {
        const hex = part.slice(at + 1, at + 3)
        if (!/^[0-9A-F]{2}$/.test(hex)) throw new Error(`escape %${hex} in ${path} is not two upper-case hex digits`)
        if (UNRESERVED.test(String.fromCharCode(parseInt(hex, 16)))) throw new Error(`escape of an unreserved character (%${hex}) kept in ${path}`)
        at += 2
      } else if (!PCHAR.test(c)) {
        throw new Error(`raw ${JSON.stringify(c)} in canonical path ${path}`)
      }
    }
    const decoded = decodeURIComponent(part)
    if (/[/\\]/.test(decoded)) throw new Error(`a separator inside segment ${part}`)
    if (hasControlCharacter(decoded)) throw new Error(`a control character inside segment ${part}`)
    const semi = decoded.indexOf(';')
    const name = semi === -1 ? decoded : decoded.slice(0, semi)
    if (semi !== -1) sawParameters = true
    if (name !== segments[i - 1]) throw new Error(`segment ${i - 1} is ${JSON.stringify(segments[i - 1])} but the path holds ${JSON.stringify(name)}`)
    if (name === '.' || name === '..') throw new Error(`dot segment in ${path}`)
    if (TRIMMED_AT_END.test(decoded) || TRIMMED_AT_END.test(name)) throw new Error(`segment ${JSON.stringify(decoded)} ends in a dot or whitespace`)
    checkDecodedAgain(decoded, path)
  }
  if (sawParameters !== pathParams) throw new Error(`pathParams is ${pathParams} but the path ${sawParameters ? 'holds' : 'holds no'} ";"`)
}

/** Decoding again and again (leniently, as a second proxy would) never reveals what is refused. */
function checkDecodedAgain(decoded: string, path: string): void {
  let text = decoded
  for (let depth = 0; depth < 10; depth++) {
    const next = text.replace(/%([0-9A-Fa-f]{2})/g, (_escape, hex: string) => {
      const byte = parseInt(hex, 16)
      const c = byte < 128 ? String.fromCharCode(byte) : '\u0080'
      if (REFUSED_WHEN_NESTED.test(c) || hasControlCharacter(c)) throw new Error(`${path} decodes, once more, to a refused ${JSON.stringify(c)}`)
      return c
    })
    if (next === text) return
    if (TRIMMED_AT_END.test(next)) throw new Error(`${path} decodes, once more, to a segment ending in a dot or whitespace`)
    text = next
  }
  throw new Error(`${path} still holds escapes after 10 more decodings`)
}

function parse(url: string): RequestTarget | GatewayError {
  return refusedWith(['bad_path'], () => parseTarget(url, HOST))
}

export const canonicalPaths = fuzzTarget({
  name: 'paths.canonical',
  longRuns: 300_000,
  property: () =>
    fc.property(requestTarget, (url) => {
      const first = parse(url)
      if (first instanceof Error) return
      checkCanonical(first)
      if (url.startsWith('/')) {
        const q = url.indexOf('?')
        if (first.query !== (q === -1 ? '' : url.slice(q + 1))) throw new Error('the query string was not kept as sent')
      }
      // Idempotence: what is forwarded parses to itself, with the same segments.
      const again = parseTarget(first.path, HOST)
      if (again.path !== first.path) throw new Error(`not idempotent: ${first.path} → ${again.path}`)
      if (JSON.stringify(again.segments) !== JSON.stringify(first.segments)) throw new Error(`${first.path} parses to other segments`)
      if (again.pathParams !== first.pathParams) throw new Error(`${first.path} changes pathParams`)
    }),
  examples: [
    // A lone surrogate was matched as itself and forwarded as %EF%BF%BD (U+FFFD), another segment.
    ['/\ud800'],
  ],
})

export const largePaths = fuzzTarget({
  name: 'paths.large',
  longRuns: 3_000,
  shortScale: 0.05,
  property: () => {
    const router = createRouter(routesOf([['/a/:p/*', ['GET'], false], ['/a/a/a/a', ['*'], true], ['/:p/:q', ['POST'], false], ['/*', ['PUT'], false]]))
    return fc.property(largeInput(fc.oneof(piece, fc.constantFrom('a/', '/', 'a;b/', 'A/'))), fc.boolean(), (text, withSlash) => {
      const url = withSlash ? `/${text}` : text
      const target = withinCpu(LARGE_INPUT_CPU_MS, 'parseTarget of a 64 KB target', () => parse(url))
      if (target instanceof Error) return
      withinCpu(LARGE_INPUT_CPU_MS, 'matching a 64 KB target', () => refusedWith(['route_not_found', 'method_not_allowed', 'bad_path'], () => router.match('GET', target)))
    })
  },
})

// --- the router, against a model that scans the routes in file order --------------------------

interface FuzzRoute extends RoutableRoute {
  id: string
}

const LITERALS = ['a', 'b', 'A', 'I', 'i', 'ab', '%61', '%C4%B1', '%C5%BF', 's', 'x;y', '%3B']
const routePath = fc
  .tuple(
    fc.array(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...LITERALS) }, { weight: 1, arbitrary: fc.constantFrom(':p', ':q') }), { maxLength: 4 }),
    fc.constantFrom('', '/', '/*'),
  )
  .map(([segments, end]) => {
    // A parameter name appears at most once in a pattern.
    const seen = new Set<string>()
    const named = segments.map((s, i) => (s.startsWith(':') ? (seen.has(s) ? `${s}${i}` : (seen.add(s), s)) : s))
    const path = `/${named.join('/')}${named.length > 0 ? end : end.slice(1)}`
    return path === '' ? '/' : path
  })

const methodSet = fc.uniqueArray(fc.constantFrom('GET', 'POST', 'TRACE', '*'), { minLength: 1, maxLength: 3 })
const routeTable = fc.array(fc.tuple(routePath, methodSet, fc.boolean()), { minLength: 1, maxLength: 8 })
const requestPath = fc
  .array(fc.constantFrom('a', 'b', 'A', 'B', 'I', 'i', '\u0131', '%C4%B1', 'S', '\u017f', '', 'x;y', 'a;', '%3B', 'ab', '%41b', '.', '%2e'), { maxLength: 5 })
  .map((segments) => `/${segments.join('/')}`)

function routesOf(table: ReadonlyArray<[string, string[], boolean]>): FuzzRoute[] {
  const routes: FuzzRoute[] = []
  for (const [path, methods, pathParams] of table) {
    const parsed = parseRoutePattern(path)
    if (!parsed.ok) continue
    routes.push({ id: `r${routes.length}`, index: routes.length, pattern: parsed.value, methods: new Set(methods), pathParams })
  }
  return routes
}

function patternMatches(route: FuzzRoute, segments: readonly string[], caseSensitive: boolean): boolean {
  const pattern = route.pattern.segments
  const fixed = route.pattern.wildcard ? pattern.slice(0, -1) : pattern
  if (route.pattern.wildcard ? segments.length < fixed.length : segments.length !== fixed.length) return false
  // README Path rules: a non-ASCII segment is read in NFKC (as an upstream that normalizes before it
  // routes reads it: `ſ` is `s`, `ａdmin` is `admin`), case-sensitive or not.
  const same = (a: string, b: string) => (caseSensitive ? compatiblePathSegment(a) === compatiblePathSegment(b) : foldPathCase(a) === foldPathCase(b))
  return fixed.every((p, i) => {
    const segment = segments[i] as string
    if (p.kind === 'param') return segment !== ''
    return p.kind === 'literal' && same(p.value, segment)
  })
}

/** README Path rules 5: a trailing slash reads as none, both ways (`/a/` takes the route `/a`, `/a` the route `/a/`). */
function matchesReadingSlash(route: FuzzRoute, segments: readonly string[], caseSensitive: boolean): boolean {
  if (patternMatches(route, segments, caseSensitive)) return true
  if (segments.length > 1 && segments.at(-1) === '' && patternMatches(route, segments.slice(0, -1), caseSensitive)) return true
  return segments.at(-1) !== '' && patternMatches(route, [...segments, ''], caseSensitive)
}

/** HEAD is GET without the body: a route that takes GET takes HEAD. */
function acceptsMethod(route: FuzzRoute, method: string): boolean {
  return route.methods.has(method) || (route.methods.has('*') && !EXPLICIT_ONLY_METHODS.has(method)) || (method === 'HEAD' && route.methods.has('GET'))
}

export const routerMatches = fuzzTarget({
  name: 'router.first-match',
  longRuns: 150_000,
  property: () =>
    fc.property(routeTable, requestPath, fc.constantFrom('GET', 'HEAD', 'POST', 'TRACE', 'PUT'), fc.boolean(), (table, path, method, caseSensitive) => {
      const routes = routesOf(table)
      const target = parse(path)
      if (target instanceof Error) return
      const router = createRouter(routes, { caseSensitive })
      const expected = routes.find((r) => matchesReadingSlash(r, target.segments, caseSensitive) && acceptsMethod(r, method))
      let found
      try {
        found = router.match(method, target)
      } catch (err) {
        const error = expectGatewayError(err, ['route_not_found', 'method_not_allowed', 'bad_path'])
        const wanted = expected
          ? 'bad_path'
          : routes.some((r) => matchesReadingSlash(r, target.segments, caseSensitive)) ? 'method_not_allowed' : 'route_not_found'
        if (error.code !== wanted) throw new Error(`router said ${error.code}, the model ${wanted}${expected ? ` (${expected.id})` : ''}`, { cause: err })
        if (wanted === 'bad_path' && (!target.pathParams || expected?.pathParams)) throw new Error('bad_path for a target the route takes', { cause: err })
        return
      }
      if (found.route !== expected) throw new Error(`router chose ${found.route.id}, the first match in file order is ${expected?.id ?? 'none'}`)
      if (target.pathParams && !found.route.pathParams) throw new Error(`${found.route.id} took ";" parameters without path_params`)
      const pattern = found.route.pattern.segments
      pattern.forEach((p, i) => {
        if (p.kind === 'param' && found.params[p.name] !== target.parts[i + 1]) throw new Error(`param ${p.name} is not the forwarded segment`)
      })
      const fixed = found.route.pattern.wildcard ? pattern.length - 1 : pattern.length
      const rest = found.route.pattern.wildcard ? target.parts.slice(fixed + 1) : []
      if (JSON.stringify(found.rest) !== JSON.stringify(rest)) throw new Error(`rest ${JSON.stringify(found.rest)} is not the forwarded tail ${JSON.stringify(rest)}`)
    }),
})
