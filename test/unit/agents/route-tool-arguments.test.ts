import { describe, expect, it } from 'vitest'
import { parseRoutePattern } from '../../../src/config/index.ts'
import { routeRequestOf, type RouteToolSource } from '../../../src/agents/mcp/route-tools.ts'

function source(path: string, query: RouteToolSource['query'] = []): RouteToolSource {
  const parsed = parseRoutePattern(path)
  if (!parsed.ok) throw new Error(parsed.message)
  return { routeId: 'r', pattern: parsed.value, method: 'GET', query, description: '' }
}

describe('a route tool call turned into its request', () => {
  it('encodes path and query arguments', () => {
    expect(routeRequestOf(source('/reports/:region', [{ name: 'day', type: 'string', required: false }]), { region: 'eu west', day: 'é' }))
      .toMatchObject({ method: 'GET', target: '/reports/eu%20west?day=%C3%A9' })
    expect(routeRequestOf(source('/files/*'), { path: 'a/b c/' })).toMatchObject({ target: '/files/a/b%20c' })
  })

  // A lone surrogate has no UTF-8 form: it made encodeURIComponent throw (an internal error to the
  // agent), and in the query string it was sent as U+FFFD, another value than the caller's.
  it('refuses a lone surrogate in a path parameter, the rest of the path or a query parameter', () => {
    expect(routeRequestOf(source('/reports/:region'), { region: 'eu\uD800' })).toBe('"region" is not well-formed Unicode (a lone surrogate)')
    expect(routeRequestOf(source('/files/*'), { path: 'a/\uDC00' })).toBe('"path" is not well-formed Unicode (a lone surrogate)')
    expect(routeRequestOf(source('/reports', [{ name: 'day', type: 'string', required: true }]), { day: '\uD83D' })).toBe('"day" is not well-formed Unicode (a lone surrogate)')
    // A pair is one character, and well formed.
    expect(routeRequestOf(source('/reports/:region'), { region: '\uD83D\uDE00' })).toMatchObject({ target: '/reports/%F0%9F%98%80' })
  })
})
