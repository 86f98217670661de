import { describe, expect, it } from 'vitest'
import { parseRoutePattern } from '../../../src/config/index.ts'
import type { GatewayError } from '../../../src/errors/index.ts'
import { parseTarget, type RequestTarget } from '../../../src/http/index.ts'
import { createRouter, type RoutableRoute } from '../../../src/gateway/router.ts'

interface R extends RoutableRoute {
  id: string
}

function routes(...defs: Array<[id: string, path: string, methods?: string[], options?: { pathParams?: boolean }]>): R[] {
  return defs.map(([id, path, methods = ['*'], options = {}], index) => {
    const parsed = parseRoutePattern(path)
    if (!parsed.ok) throw new Error(parsed.message)
    return { id, index, pattern: parsed.value, methods: new Set(methods), pathParams: options.pathParams ?? false }
  })
}

function segments(path: string): RequestTarget {
  return parseTarget(path, undefined)
}

function refusal(fn: () => unknown): GatewayError {
  try {
    fn()
  } catch (err) {
    return err as GatewayError
  }
  throw new Error('no refusal')
}

describe('router', () => {
  it('takes the first match in file order, not the most specific one', () => {
    const router = createRouter(routes(['by-region', '/sales/daily/:region'], ['summary', '/sales/daily/summary'], ['all', '/sales/*']))
    expect(router.match('GET', segments('/sales/daily/summary')).route.id).toBe('by-region')
    expect(router.match('GET', segments('/sales/daily/eu')).params).toEqual({ region: 'eu' })
    expect(router.match('GET', segments('/sales/monthly')).route.id).toBe('all')
  })

  it('lets an earlier wildcard win over a later literal', () => {
    const router = createRouter(routes(['files', '/files/*'], ['readme', '/files/readme']))
    const found = router.match('GET', segments('/files/readme'))
    expect(found.route.id).toBe('files')
    expect(found.rest).toEqual(['readme'])
  })

  it('matches a trailing wildcard with zero or more segments', () => {
    const router = createRouter(routes(['files', '/files/*']))
    expect(router.match('GET', segments('/files')).rest).toEqual([])
    expect(router.match('GET', segments('/files/')).rest).toEqual([''])
    expect(router.match('GET', segments('/files/a/b')).rest).toEqual(['a', 'b'])
  })

  it('reads a trailing slash as none, both ways, so the route Express would run is the one authorized', () => {
    const router = createRouter(routes(['admin', '/admin', ['GET']], ['user', '/users/:id'], ['docs', '/docs/'], ['all', '/*']))
    expect(router.match('GET', segments('/admin/')).route.id).toBe('admin')
    expect(router.match('GET', segments('/ADMIN/')).route.id).toBe('admin')
    expect(router.match('GET', segments('/users/42/'))).toMatchObject({ route: { id: 'user' }, params: { id: '42' } })
    expect(router.match('GET', segments('/docs')).route.id).toBe('docs')
    expect(router.match('GET', segments('/docs/')).route.id).toBe('docs')
    // Only a trailing one: an empty segment inside is merged, and a second slash at the end is another segment's.
    expect(router.match('GET', segments('/admin/x')).route.id).toBe('all')
    // The earlier route still wins: a wildcard before the exact route takes the slashed path too.
    const first = createRouter(routes(['files', '/files/*'], ['file-index', '/files']))
    expect(first.match('GET', segments('/files/'))).toMatchObject({ route: { id: 'files' }, rest: [''] })
    // 405, not 404, for a method the slashed path's route does not take.
    const only = createRouter(routes(['admin', '/admin', ['GET']]))
    expect(refusal(() => only.match('POST', segments('/admin/'))).code).toBe('method_not_allowed')
    expect(refusal(() => only.match('GET', segments('/admin/x'))).code).toBe('route_not_found')
  })

  it('does not match an empty segment with a parameter', () => {
    const router = createRouter(routes(['one', '/u/:id']))
    expect(refusal(() => router.match('GET', segments('/u/'))).code).toBe('route_not_found')
  })

  it('picks the first route whose method matches, falling through to later ones', () => {
    const router = createRouter(routes(['read', '/items/:id', ['GET', 'HEAD']], ['write', '/items/:id', ['PUT']], ['any', '/items/*']))
    expect(router.match('PUT', segments('/items/1')).route.id).toBe('write')
    expect(router.match('DELETE', segments('/items/1')).route.id).toBe('any')
  })

  it('gives a HEAD to the route that takes the GET, not to a later one (HEAD is GET without the body)', () => {
    const router = createRouter(routes(['report', '/reports/:id', ['GET']], ['any', '/*']))
    expect(router.match('HEAD', segments('/reports/1')).route.id).toBe('report')
    expect(router.match('POST', segments('/reports/1')).route.id).toBe('any')
    // An earlier route that lists HEAD (or takes every method) still comes first.
    expect(createRouter(routes(['head', '/reports/*', ['HEAD']], ['report', '/reports/:id', ['GET']])).match('HEAD', segments('/reports/1')).route.id).toBe('head')
    const only = createRouter(routes(['report', '/reports/:id', ['GET']]))
    expect(only.match('HEAD', segments('/reports/1')).route.id).toBe('report')
    expect(refusal(() => only.match('POST', segments('/reports/1'))).headers).toEqual({ allow: 'GET, HEAD' })
  })

  it('answers 405 with Allow when only the method differs, 404 otherwise', () => {
    const router = createRouter(routes(['read', '/items/:id', ['GET', 'HEAD']], ['write', '/items/:id', ['PUT']]))
    const notAllowed = refusal(() => router.match('POST', segments('/items/1')))
    expect(notAllowed.code).toBe('method_not_allowed')
    expect(notAllowed.headers).toEqual({ allow: 'GET, HEAD, PUT' })
    expect(refusal(() => router.match('GET', segments('/other'))).code).toBe('route_not_found')
  })

  it('routes correctly among 10,000 routes', () => {
    const many = routes(...Array.from({ length: 10_000 }, (_, i): [string, string] => [`r${i}`, `/svc${i % 100}/v${i}/:id/items`]))
    const router = createRouter(many)
    expect(router.size).toBe(10_000)
    expect(router.match('GET', segments('/svc42/v9942/7/items'))).toMatchObject({ route: { id: 'r9942' }, params: { id: '7' } })
    expect(refusal(() => router.match('GET', segments('/svc42/v9943/7/items'))).code).toBe('route_not_found')
  })

  it('never counts TRACE, TRACK or CONNECT in "*": they need a route that lists them', () => {
    const router = createRouter(routes(['any', '/public/*']))
    for (const method of ['TRACE', 'TRACK', 'CONNECT']) {
      const refused = refusal(() => router.match(method, segments('/public/x')))
      expect(refused.code).toBe('method_not_allowed')
      expect(refused.detail).toContain('only where a route lists them')
    }
    expect(router.match('PROPFIND', segments('/public/x')).route.id).toBe('any')
  })

  it('takes TRACE where a route lists it, also next to "*"', () => {
    const router = createRouter(routes(['diagnostics', '/debug/*', ['*', 'TRACE']], ['read', '/items/*', ['GET', 'TRACE']], ['any', '/*']))
    expect(router.match('TRACE', segments('/debug/x')).route.id).toBe('diagnostics')
    expect(router.match('GET', segments('/debug/x')).route.id).toBe('diagnostics')
    expect(router.match('TRACE', segments('/items/1')).route.id).toBe('read')
    expect(refusal(() => router.match('TRACE', segments('/other'))).code).toBe('method_not_allowed')
  })

  it('names the methods in Allow when TRACE meets a route with a method list', () => {
    const router = createRouter(routes(['read', '/items/:id', ['GET', 'HEAD']]))
    const refused = refusal(() => router.match('TRACE', segments('/items/1')))
    expect(refused.code).toBe('method_not_allowed')
    expect(refused.headers).toEqual({ allow: 'GET, HEAD' })
  })

  describe('letter case', () => {
    const defs = [['admin', '/api/admin/*', ['*']], ['user', '/api/Users/:Id'], ['api', '/api/*']] as Array<[string, string, string[]?]>

    it('matches literals case-insensitively by default', () => {
      const router = createRouter(routes(...defs))
      expect(router.match('GET', segments('/api/ADMIN/users')).route.id).toBe('admin')
      expect(router.match('GET', segments('/API/Admin/users')).route.id).toBe('admin')
      expect(router.match('GET', segments('/api/users/7')).route.id).toBe('user')
    })

    it('folds non-ASCII letters the way an upper-casing comparison does', () => {
      const router = createRouter(routes(...defs))
      expect(router.match('GET', segments('/api/adm%C4%B1n/users')).route.id).toBe('admin') // ı, dotless i
      expect(router.match('GET', segments('/api/u%C5%BFers/7')).route.id).toBe('user') // ſ, long s
    })

    it('keeps the client\'s case in params and rest', () => {
      const router = createRouter(routes(...defs))
      expect(router.match('GET', segments('/API/USERS/AbC')).params).toEqual({ Id: 'AbC' })
      expect(router.match('GET', segments('/api/Admin/Reports/Q1')).rest).toEqual(['Reports', 'Q1'])
    })

    it('matches case-sensitively when asked to', () => {
      const router = createRouter(routes(...defs), { caseSensitive: true })
      expect(router.match('GET', segments('/api/ADMIN/users')).route.id).toBe('api')
      expect(router.match('GET', segments('/api/admin/users')).route.id).toBe('admin')
      expect(router.match('GET', segments('/api/Users/7')).route.id).toBe('user')
      expect(router.match('GET', segments('/api/users/7')).route.id).toBe('api')
    })
  })

  describe('path parameters (;)', () => {
    it('refuses them on the route the path matches without them, when it did not opt in', () => {
      const router = createRouter(routes(['admin', '/api/admin/*'], ['api', '/api/*', ['*'], { pathParams: true }]))
      for (const path of ['/api/admin;/users', '/api/admin;jsessionid=x/users', '/api/admin%3B/users', '/api/ADMIN;x/users']) {
        expect(refusal(() => router.match('GET', segments(path))).code, path).toBe('bad_path')
      }
      // The route that opted in takes them.
      expect(router.match('GET', segments('/api/public;jsessionid=x/a')).route.id).toBe('api')
    })

    it('matches an opted-in route without them and forwards them in params and rest', () => {
      const router = createRouter(routes(['user', '/users/:id', ['GET'], { pathParams: true }], ['files', '/files/*', ['GET'], { pathParams: true }]))
      const user = router.match('GET', segments('/users/7;jsessionid=X'))
      expect(user.route.id).toBe('user')
      expect(user.params).toEqual({ id: '7;jsessionid=X' })
      expect(router.match('GET', segments('/files/a;v=1/b%3Bc')).rest).toEqual(['a;v=1', 'b%3Bc'])
    })

    it('changes nothing for a path without them', () => {
      const router = createRouter(routes(['admin', '/api/admin/*']))
      expect(router.match('GET', segments('/api/admin/users')).route.id).toBe('admin')
    })
  })

  it('captures params and rest in the forwarded form: reserved escapes stay encoded', () => {
    const router = createRouter(routes(['item', '/items/:id/*']))
    const found = router.match('GET', segments('//items/a%3Db%2c/x%40y/%7Ez'))
    expect(found.params).toEqual({ id: 'a%3Db%2C' })
    expect(found.rest).toEqual(['x%40y', '~z'])
  })
})
