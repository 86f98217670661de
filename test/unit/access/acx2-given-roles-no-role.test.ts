// Roles given to explain (a recorded request's, replayed: the record keeps the roles, not the claims)
// are held as given, and a 403 no_role for none says which trust rule failed — not that a token
// exchange's roles are no longer given, which only the gateway's own tokens (their idp) can say.
import { expect, it } from 'vitest'
import { accessDenied, compileAccess, evaluateAccess } from '../../../src/access/index.ts'
import { jwtIssuers, loadConfigText } from '../../../src/config/index.ts'
import { identityFromClaims } from '../../../src/identity/index.ts'

const loaded = loadConfigText(`
issuers: [{ name: corp, issuer: "https://corp.example/", audiences: [api] }]
roles: [{ name: staff, assumed_by: [{ issuer: corp, subject: alice, claims: { tier: gold } }], policies: [p] }]
policies: [{ name: p, statements: [{ sid: Read, effect: allow, actions: [GET], routes: ["*"] }] }]
upstreams: [{ name: api, url: "http://127.0.0.1:9" }]
routes: [{ id: api, path: /api/*, upstream: api }]
`, 'given.yaml')
if (!loaded.config) throw new Error(JSON.stringify(loaded.diagnostics))
const access = compileAccess(loaded.config)
const reconstructed = (sub: string, roles: string[]) => ({ ...identityFromClaims(jwtIssuers(loaded.config!)[0]!, { iss: 'https://corp.example/', aud: 'api', exp: 2e9, sub }), grantedRoles: roles })

it('holds given roles whatever the trust rules read (the record has no claims), and says which rule failed for none', () => {
  const given = reconstructed('alice', ['staff']) // no tier claim: the trust rule would not match it
  expect(evaluateAccess(access, given, { policy: access.policyFor('api') }, 'GET', '10.0.0.1').decision.effect).toBe('allow')
  const none = reconstructed('bob', [])
  const result = evaluateAccess(access, none, { policy: access.policyFor('api') }, 'GET', '10.0.0.1')
  expect(accessDenied(result, none, 'api', 'GET').detail).toBe('No role\'s trust rule matches issuer "corp", subject "bob".')
})
