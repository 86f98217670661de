// A POST that names another method in `_method` (http/method-override.ts), in its query, its form
// body or its JSON body, runs as that method in Laravel, Symfony, Rails and Express's method-override: it is routed
// and authorized as both. The route
// that takes the POST must be the one that takes the named method there (404, 405 or 400
// otherwise), and the policies must allow both: a deny of either wins. The pipeline and explain
// share these, so they cannot disagree.
import { accessDenied, evaluateAccess, type AccessControl, type AccessResult } from '../access/index.ts'
import { GatewayError } from '../errors/index.ts'
import type { Identity } from '../request/index.ts'
import type { CompiledRoute } from './compile.ts'
import type { RouteTarget, Router } from './router.ts'

/** Throws the answer the named method would get at this path, or 400 when another route would take it. */
export function checkOverrideRoutes(router: Router<CompiledRoute>, route: CompiledRoute, target: RouteTarget, overrides: readonly string[], source: OverrideSource = 'query'): void {
  for (const method of overrides) {
    let other: CompiledRoute
    try {
      other = router.match(method, target).route
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err
      throw new GatewayError(err.code, { detail: `${asked(method, source)}: ${err.detail}`, headers: err.headers })
    }
    if (other !== route) {
      throw new GatewayError('bad_request', {
        detail: `${asked(method, source)}, which route "${other.id}" takes at this path, not route "${route.id}" that takes the POST.`,
      })
    }
  }
}

export interface OverriddenAccess {
  result: AccessResult
  /** The method the result is for: the request's own, or the override that was denied. */
  method: string
}

/** The request's own method decided first, then each override; the first denial is the answer. */
export function evaluateWithOverrides(access: AccessControl, identity: Identity, route: CompiledRoute, method: string, overrides: readonly string[], clientIp: string): OverriddenAccess {
  const result = evaluateAccess(access, identity, route, method, clientIp)
  if (result.decision.effect !== 'allow') return { result, method }
  for (const override of overrides) {
    const overridden = evaluateAccess(access, identity, route, override, clientIp)
    if (overridden.decision.effect !== 'allow') return { result: overridden, method: override }
  }
  return { result, method }
}

/** The 403 for a denial, saying when it was the `_method` parameter's method that was denied. */
export function overriddenAccessDenied(judged: OverriddenAccess, identity: Identity, routeId: string, requestMethod: string, source: OverrideSource = 'query'): GatewayError {
  const denied = accessDenied(judged.result, identity, routeId, judged.method)
  if (judged.method === requestMethod) return denied
  return new GatewayError(denied.code, { detail: `${asked(judged.method, source)}: ${denied.detail}` })
}

/**
 * The method a refusal's detail says a POST's `_method` asked for, and where (asked()'s words read
 * back), or null: an audit record keeps the detail but neither the query nor the body that named it.
 */
export function overrideAskedIn(detail: string): { method: string; source: OverrideSource } | null {
  const found = ASKED.exec(detail)
  if (found === null) return null
  return { method: found[5] as string, source: found[1] !== undefined ? 'query' : found[2] !== undefined ? 'form' : found[3] !== undefined ? 'json' : 'header' }
}

const ASKED = /^This POST's (?:(_method parameter)|(form body has a _method field)|(JSON body has a top-level _method)|(method-override header))(?: that)? asks for ([!#$%&'*+.^_`|~0-9A-Za-z-]+) \(/

/**
 * Where the `_method` was: the query (a parameter), the form body (a field), or a JSON body (a
 * top-level key); or a method-override header a forward-auth check passed on (X-HTTP-Method-Override).
 */
export type OverrideSource = 'query' | 'form' | 'json' | 'header'

function asked(method: string, source: OverrideSource): string {
  if (source === 'header') return `This POST's method-override header asks for ${method} (Symfony, Laravel, Rails and Express's method-override run the request as ${method})`
  if (source === 'query') return `This POST's _method parameter asks for ${method} (Laravel, Symfony and Express's method-override run the request as ${method})`
  if (source === 'form') return `This POST's form body has a _method field that asks for ${method} (Rails, Laravel, Symfony and Express's method-override run the request as ${method})`
  return `This POST's JSON body has a top-level _method that asks for ${method} (Laravel, and Express's method-override reading the parsed body, run the request as ${method})`
}
