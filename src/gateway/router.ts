// A segment trie that answers SPEC's rule exactly: the first route in file order whose methods
// and path match. Radix routers such as find-my-way rank static > param > wildcard instead, which
// would pick a different route than the file says when patterns overlap. Matching walks one trie
// branch per kind of segment and skips any subtree whose earliest route cannot beat the best
// match found so far, so its cost follows the path's depth, not the number of routes
// (bench/router.ts measures both against find-my-way).
import type { RoutePattern } from '../config/route-pattern.ts'
import { GatewayError } from '../errors/index.ts'

export interface RoutableRoute {
  /** Position in the file: lower wins. */
  readonly index: number
  readonly pattern: RoutePattern
  /** Upper-case methods; empty means any method. */
  readonly methods: ReadonlySet<string>
}

export interface RouteMatch<R extends RoutableRoute> {
  route: R
  params: Record<string, string>
  /** The part matched by a trailing `*`, as decoded segments. */
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
  /** Throws route_not_found or method_not_allowed (with an Allow header). */
  match(method: string, segments: readonly string[]): RouteMatch<R>
  readonly size: number
}

export function createRouter<R extends RoutableRoute>(routes: readonly R[]): Router<R> {
  const root = newNode<R>()
  for (const route of routes) insert(root, route)

  function match(method: string, segments: readonly string[]): RouteMatch<R> {
    const route = find(root, segments, 0, method, Number.POSITIVE_INFINITY)
    if (route) return { route, ...captures(route.pattern, segments) }
    const allowed = new Set<string>()
    collectMethods(root, segments, 0, allowed)
    if (allowed.size === 0) throw new GatewayError('route_not_found', { detail: 'No route matches this path.' })
    const allow = allowed.has('*') ? '*' : [...allowed].sort().join(', ')
    throw new GatewayError('method_not_allowed', {
      detail: `The route does not accept ${method}; it accepts ${allow}.`,
      headers: allowed.has('*') ? undefined : { allow },
    })
  }

  return { match, size: routes.length }
}

function insert<R extends RoutableRoute>(root: TrieNode<R>, route: R): void {
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
      next = node.literals.get(segment.value)
      if (!next) node.literals.set(segment.value, (next = newNode()))
    }
    next.minIndex = Math.min(next.minIndex, route.index)
    node = next
  }
  ;(node.exact ??= []).push(route)
}

function accepts(route: RoutableRoute, method: string): boolean {
  return route.methods.size === 0 || route.methods.has(method)
}

/** Depth-first over literal, param and wildcard branches; `best` prunes what cannot win. */
function find<R extends RoutableRoute>(
  node: TrieNode<R>,
  segments: readonly string[],
  depth: number,
  method: string,
  bestIndex: number,
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
    if (node.exact) {
      for (const route of node.exact) {
        if (route.index >= bestIndex) break
        if (accepts(route, method)) return route
      }
    }
    return best
  }
  const segment = segments[depth] as string
  const literal = node.literals?.get(segment)
  if (literal && literal.minIndex < bestIndex) {
    const found = find(literal, segments, depth + 1, method, bestIndex)
    if (found) {
      best = found
      bestIndex = found.index
    }
  }
  // A parameter matches exactly one non-empty segment.
  if (node.param && segment !== '' && node.param.minIndex < bestIndex) {
    const found = find(node.param, segments, depth + 1, method, bestIndex)
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
): void {
  const add = (routes: readonly R[] | null) => {
    for (const route of routes ?? []) {
      if (route.methods.size === 0) into.add('*')
      for (const m of route.methods) into.add(m)
    }
  }
  add(node.wildcard)
  if (depth === segments.length) {
    add(node.exact)
    return
  }
  const segment = segments[depth] as string
  const literal = node.literals?.get(segment)
  if (literal) collectMethods(literal, segments, depth + 1, into)
  if (node.param && segment !== '') collectMethods(node.param, segments, depth + 1, into)
}

function captures(pattern: RoutePattern, segments: readonly string[]): { params: Record<string, string>; rest: string[] } {
  const params: Record<string, string> = {}
  let rest: string[] = []
  const parts = pattern.segments
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]
    if (part?.kind === 'param') params[part.name] = segments[i] as string
    else if (part?.kind === 'wildcard') rest = segments.slice(i)
  }
  return { params, rest }
}
