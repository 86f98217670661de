import { describe, expect, it } from 'vitest'
import { parseRoutePattern } from '../../../src/config/index.ts'
import type { GatewayError } from '../../../src/errors/index.ts'
import { createRouter, type RoutableRoute } from '../../../src/gateway/router.ts'

interface R extends RoutableRoute {
  id: string
}

function routes(...defs: Array<[id: string, path: string, methods?: string[]]>): R[] {
  return defs.map(([id, path, methods = []], index) => {
    const parsed = parseRoutePattern(path)
    if (!parsed.ok) throw new Error(parsed.message)
    return { id, index, pattern: parsed.value, methods: new Set(methods) }
  })
}

function segments(path: string): string[] {
  return path.slice(1).split('/')
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

  it('does not match an empty segment with a parameter', () => {
    const router = createRouter(routes(['one', '/u/:id']))
    expect(refusal(() => router.match('GET', segments('/u/'))).code).toBe('route_not_found')
  })

  it('picks the first route whose method matches, falling through to later ones', () => {
    const router = createRouter(routes(['read', '/items/:id', ['GET', 'HEAD']], ['write', '/items/:id', ['PUT']], ['any', '/items/*']))
    expect(router.match('PUT', segments('/items/1')).route.id).toBe('write')
    expect(router.match('DELETE', segments('/items/1')).route.id).toBe('any')
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
})
