// A segment trie that answers SPEC's rule exactly: the first route in file order whose methods
// and path match. Radix routers such as find-my-way rank static > param > wildcard instead, which
// would pick a different route than the file says when patterns overlap. Matching walks one trie
// branch per kind of segment and skips any subtree whose earliest route cannot beat the best
// match found so far, so its cost follows the path's depth, not the number of routes
// (bench/router.ts measures both against find-my-way).
//
// Literals match case-insensitively unless the router is built case-sensitive, and a trailing slash
// is optional: the route an upstream that ignores case and the slash (Express, ASP.NET) would run
// is the one that is authorized.
import { compatiblePathSegment, foldPathCase, type RoutePattern } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import type { RequestTarget } from '../http/index.ts'

export interface RoutableRoute {
  /** Position in the file: lower wins. */
  readonly index: number
  readonly pattern: RoutePattern
  /** Upper-case methods as listed; `*` stands for every method but EXPLICIT_ONLY_METHODS. */
  readonly methods: ReadonlySet<string>
  /** `path_params: true`: takes segments with `;` parameters (matched without them). */
  readonly pathParams: boolean
}

/**
 * Methods a route takes only when it lists them: `*` never includes them. TRACE echoes the request
 * back, with the credentials the gateway added for the upstream (RFC 9110 §9.3.8; Cross-Site
 * Tracing); TRACK is IIS's TRACE; CONNECT asks for a tunnel.
 */
export const EXPLICIT_ONLY_METHODS: ReadonlySet<string> = new Set(['TRACE', 'TRACK', 'CONNECT'])

export type RouteTarget = Pick<RequestTarget, 'parts' | 'segments' | 'pathParams'>

export interface RouteMatch<R extends RoutableRoute> {
  route: R
  /** The `:param` values as the client sent them, in the canonical (forwarded) form. */
  params: Record<string, string>
  /** The segments matched by a trailing `*`, in the canonical (forwarded) form. */
  rest: string[]
}

interface TrieNode<R> {
  literals: Map<string, TrieNode<R>> | null
  param: TrieNode<R> | null
  /** Routes whose pattern ends here, in file order. */
  exact: R[] | null
  /** Routes whose pattern ends with `/*` after this node, in file order. */
  wildcard: R[] | null
  /** The lowest route index anywhere below (and at) this node. */
  minIndex: number
}

function newNode<R>(): TrieNode<R> {
  return { literals: null, param: null, exact: null, wildcard: null, minIndex: Number.POSITIVE_INFINITY }
}

export interface Router<R extends RoutableRoute> {
  /**
   * Throws route_not_found, method_not_allowed (with an Allow header), or bad_path when the path
   * holds `;` parameters and the route it matches does not take them.
   */
  match(method: string, target: RouteTarget): RouteMatch<R>
  readonly size: number
}

export interface RouterOptions {
  /** Match literals case-sensitively (`server.case_sensitive_paths`); by default case is ignored. */
  caseSensitive?: boolean
}

export function createRouter<R extends RoutableRoute>(routes: readonly R[], options: RouterOptions = {}): Router<R> {
  const fold = options.caseSensitive !== true
  const root = newNode<R>()
  for (const route of routes) insert(root, route, fold)

  function match(method: string, target: RouteTarget): RouteMatch<R> {
    const { segments } = target
    const route = find(root, segments, 0, method, Number.POSITIVE_INFINITY, fold)
    if (route) {
      // Matching ignored the parameters (as servlet containers do); only an opted-in route takes them.
      if (target.pathParams && !route.pathParams) {
        throw new GatewayError('bad_path', { detail: 'A ";" in a path segment is refused: the route does not set path_params: true.' })
      }
      return { route, ...captures(route.pattern, target.parts) }
    }
    const allowed = new Set<string>()
    collectMethods(root, segments, 0, allowed, fold)
    if (allowed.size === 0) throw new GatewayError('route_not_found', { detail: 'No route matches this path.' })
    const any = allowed.has('*')
    const allow = any ? '*' : [...allowed].sort().join(', ')
    throw new GatewayError('method_not_allowed', {
      detail: any && EXPLICIT_ONLY_METHODS.has(method)
        ? `The route does not accept ${method}: ${[...EXPLICIT_ONLY_METHODS].join(', ')} are accepted only where a route lists them.`
        : `The route does not accept ${method}; it accepts ${allow}.`,
      headers: any ? undefined : { allow },
    })
  }

  return { match, size: routes.length }
}

function insert<R extends RoutableRoute>(root: TrieNode<R>, route: R, fold: boolean): void {
  let node = root
  node.minIndex = Math.min(node.minIndex, route.index)
  for (const segment of route.pattern.segments) {
    if (segment.kind === 'wildcard') {
      ;(node.wildcard ??= []).push(route)
      return
    }
    let next: TrieNode<R> | undefined
    if (segment.kind === 'param') {
      next = node.param ??= newNode()
    } else {
      node.literals ??= new Map()
      const key = fold ? foldPathCase(segment.value) : compatiblePathSegment(segment.value)
      next = node.literals.get(key)
      if (!next) node.literals.set(key, (next = newNode()))
    }
    next.minIndex = Math.min(next.minIndex, route.index)
    node = next
  }
  ;(node.exact ??= []).push(route)
}

/**
 * HEAD is GET without the body (RFC 9110 §9.3.2): Express, Spring and Go's ServeMux run a GET
 * handler for it, so a route that takes GET takes its HEAD, as a later route listing HEAD or `*`
 * once did, with none of the GET route's limits (probe finding: HEAD ran a report rate-limited
 * to 1/m without end). The policies decide HEAD as GET too: a statement naming GET names HEAD
 * (config's statementActions).
 */
function accepts(route: RoutableRoute, method: string): boolean {
  return route.methods.has(method) || (route.methods.has('*') && !EXPLICIT_ONLY_METHODS.has(method)) || (method === 'HEAD' && route.methods.has('GET'))
}

/** The first of `routes` (in file order) before `bestIndex` that takes the method. */
function firstAccepting<R extends RoutableRoute>(routes: readonly R[] | null, method: string, bestIndex: number): R | undefined {
  if (routes === null) return undefined
  for (const route of routes) {
    if (route.index >= bestIndex) break
    if (accepts(route, method)) return route
  }
  return undefined
}

/** Depth-first over literal, param and wildcard branches; `best` prunes what cannot win. */
function find<R extends RoutableRoute>(
  node: TrieNode<R>,
  segments: readonly string[],
  depth: number,
  method: string,
  bestIndex: number,
  fold: boolean,
): R | undefined {
  let best: R | undefined
  if (node.wildcard) {
    for (const route of node.wildcard) {
      if (route.index >= bestIndex) break
      if (accepts(route, method)) {
        best = route
        bestIndex = route.index
        break
      }
    }
  }
  if (depth === segments.length) {
    // `/admin` also matches a route written `/admin/` (below: and the other way round).
    const exact = firstAccepting(node.exact, method, bestIndex)
    const slashed = firstAccepting(node.literals?.get('')?.exact ?? null, method, exact?.index ?? bestIndex)
    return slashed ?? exact ?? best
  }
  const segment = segments[depth] as string
  // A trailing slash reads as none: Express (non-strict), Spring before 6 and ASP.NET run `/admin/`
  // with `/admin`'s handler, so that route is the one authorized, not a catch-all after it.
  if (segment === '' && depth === segments.length - 1 && node.exact) {
    const exact = firstAccepting(node.exact, method, bestIndex)
    if (exact) {
      best = exact
      bestIndex = exact.index
    }
  }
  const literal = node.literals?.get(fold ? foldPathCase(segment) : compatiblePathSegment(segment))
  if (literal && literal.minIndex < bestIndex) {
    const found = find(literal, segments, depth + 1, method, bestIndex, fold)
    if (found) {
      best = found
      bestIndex = found.index
    }
  }
  // A parameter matches exactly one non-empty segment.
  if (node.param && segment !== '' && node.param.minIndex < bestIndex) {
    const found = find(node.param, segments, depth + 1, method, bestIndex, fold)
    if (found) best = found
  }
  return best
}

/** For 404 vs 405: every method accepted by any route whose path matches. */
function collectMethods<R extends RoutableRoute>(
  node: TrieNode<R>,
  segments: readonly string[],
  depth: number,
  into: Set<string>,
  fold: boolean,
): void {
  const add = (routes: readonly R[] | null) => {
    for (const route of routes ?? []) {
      for (const m of route.methods) into.add(m)
      if (route.methods.has('GET')) into.add('HEAD') // accepts(): a GET route takes HEAD
    }
  }
  add(node.wildcard)
  if (depth === segments.length) {
    add(node.exact)
    add(node.literals?.get('')?.exact ?? null)
    return
  }
  const segment = segments[depth] as string
  if (segment === '' && depth === segments.length - 1) add(node.exact)
  const literal = node.literals?.get(fold ? foldPathCase(segment) : compatiblePathSegment(segment))
  if (literal) collectMethods(literal, segments, depth + 1, into, fold)
  if (node.param && segment !== '') collectMethods(node.param, segments, depth + 1, into, fold)
}

/**
 * Params and rest from the canonical parts, not the decoded segments, so a rewrite forwards them
 * as the client sent them (`%3D` stays `%3D`): `parts[i + 1]` is the forwarded form of segment i.
 */
function captures(pattern: RoutePattern, parts: readonly string[]): { params: Record<string, string>; rest: string[] } {
  const params: Record<string, string> = {}
  let rest: string[] = []
  const segments = pattern.segments
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]
    if (segment?.kind === 'param') params[segment.name] = parts[i + 1] as string
    else if (segment?.kind === 'wildcard') rest = parts.slice(i + 1)
  }
  return { params, rest }
}
