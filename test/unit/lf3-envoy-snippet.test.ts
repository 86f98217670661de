// Found by the limits and forward-auth probe (lf3): docs/forward-auth.md's Envoy section had the
// client's copies of Bouncer's headers (x-bouncer-assertion, the upstream's credential) removed by
// the route's request_headers_to_remove. Envoy's router applies that after every HTTP filter,
// ext_authz included, so it removed the assertion and credential Bouncer's 200 had set, and every
// allowed request reached the API without them (Envoy's docs; Contour users met the same). Envoy
// is not installed here: this reads the snippet as Envoy would order it. The client's copies go in a
// header_mutation filter before ext_authz; the route removes only the client's own credentials.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'

const guide = readFileSync(new URL('../../docs/forward-auth.md', import.meta.url), 'utf8')
const section = guide.slice(guide.indexOf('## Envoy'), guide.indexOf('## Testing it'))
const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? ''

interface Filter {
  name: string
  typed_config: Record<string, unknown>
}
interface Patterns {
  patterns: Array<{ exact: string }>
}
interface Snippet {
  http_filters: Filter[]
  route_config?: { virtual_hosts: Array<{ routes: Array<{ request_headers_to_remove?: string[] }> }> }
}

const snippet = parse(block) as Snippet
const names = snippet.http_filters.map((f) => f.name)
const extAuthz = snippet.http_filters.find((f) => f.name === 'envoy.filters.http.ext_authz')?.typed_config as {
  http_service: { authorization_response: Record<string, Patterns | undefined> }
}
const response = extAuthz.http_service.authorization_response
const bouncers = (response.allowed_upstream_headers as Patterns).patterns.map((p) => p.exact)

describe('the Envoy snippet of docs/forward-auth.md', () => {
  it('removes the client\'s copies of Bouncer\'s headers before ext_authz, in a filter', () => {
    const at = names.indexOf('envoy.filters.http.header_mutation')
    expect(at).toBeGreaterThanOrEqual(0)
    expect(at).toBeLessThan(names.indexOf('envoy.filters.http.ext_authz'))
    const mutation = snippet.http_filters[at]!.typed_config as { mutations: { request_mutations: Array<{ remove?: string }> } }
    const removed = mutation.mutations.request_mutations.map((m) => m.remove)
    for (const header of bouncers) expect(removed).toContain(header)
  })

  it('has no route remove them after the check, which would remove Bouncer\'s own', () => {
    const routes = snippet.route_config?.virtual_hosts.flatMap((v) => v.routes) ?? []
    for (const route of routes) for (const header of bouncers) expect(route.request_headers_to_remove ?? []).not.toContain(header)
    expect(section).not.toMatch(/x-bouncer-assertion`?[^.]*on the route\s+\(`request_headers_to_remove`\)/)
  })

  it('passes the RateLimit headers on with an allowed request\'s answer, as the guide promises', () => {
    const onSuccess = (response.allowed_client_headers_on_success?.patterns ?? []).map((p) => p.exact)
    expect(onSuccess).toEqual(expect.arrayContaining(['ratelimit', 'ratelimit-policy']))
  })
})
