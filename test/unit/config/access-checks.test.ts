// `bouncer check` on a deny-list under an allow on "*": methods the deny does not name pass (a probe
// of roles and policies found PROPFIND and PURGE through a deny of the write methods). The overlap
// warning says so where the route takes any method; not where the route's own methods bound it.
import { expect, it } from 'vitest'
import { loadConfigText } from '../../../src/config/index.ts'

function overlapWarnings(routeMethods: string, allowActions: string): string[] {
  const text = `issuers:
  - { name: idp, issuer: https://idp.example, jwks_uri: https://idp.example/jwks, audiences: [api] }
roles:
  - { name: reader, assumed_by: [{ issuer: idp }], policies: [p] }
policies:
  - name: p
    statements:
      - { sid: All, effect: allow, actions: ${allowActions}, routes: [api] }
      - { sid: NoWrites, effect: deny, actions: [POST, PUT, PATCH, DELETE], routes: [api] }
upstreams:
  - { name: api, url: http://127.0.0.1:9 }
routes:
  - { id: api, path: /api/*, upstream: api, methods: ${routeMethods} }
`
  const loaded = loadConfigText(text, 'bouncer.yaml', {})
  expect(loaded.config).toBeDefined()
  return loaded.diagnostics.filter((d) => d.message.includes('overlaps deny')).map((d) => d.message)
}

it('says a deny-list under an allow on "*" still allows every method it does not name, on a route that takes any', () => {
  expect(overlapWarnings('["*"]', '["*"]')).toEqual([
    'allow "All" overlaps deny "NoWrites" for POST, PUT, PATCH, DELETE on api: the deny wins there (unless their conditions never hold together); every other method (PROPFIND, PURGE, any the upstream takes) is still allowed by the "*": to allow only some, name them in the allow instead',
  ])
})

it('says only the overlap where the route names its methods, or the allow names its own', () => {
  expect(overlapWarnings('[GET, POST]', '["*"]')).toEqual([
    'allow "All" overlaps deny "NoWrites" for POST, PUT, PATCH, DELETE on api: the deny wins there (unless their conditions never hold together)',
  ])
  expect(overlapWarnings('["*"]', '[GET, POST]')).toEqual([
    'allow "All" overlaps deny "NoWrites" for POST on api: the deny wins there (unless their conditions never hold together)',
  ])
})
