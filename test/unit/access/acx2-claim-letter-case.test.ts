// Found by the access probe (helper): claim conditions and subject globs match letter case exactly
// (SPEC: "each claim must equal"), but identity providers keep the case an address or a name was
// typed in (Entra ID's upn and email, Okta's login): `email: "*@contractor.example"` missed
// `Bob@Contractor.example`, and bouncer explain said only that the two differ, not that the
// difference is letter case, so the author went looking elsewhere. The behaviour stays (a deny on
// a case variant is the author's to list); the explanation now says so.
import { describe, expect, it } from 'vitest'
import { compileAccess, describeClaimMismatch, ruleMismatch, statementMismatch } from '../../../src/access/index.ts'
import { jwtIssuers, loadConfigText } from '../../../src/config/index.ts'
import { identityFromClaims } from '../../../src/identity/index.ts'

const loaded = loadConfigText(`
issuers: [{ name: corp, issuer: "https://corp.example/", audiences: [api] }]
roles:
  - { name: staff, assumed_by: [{ issuer: corp, subject: "svc-*", claims: { groups: [Finance, Ops] } }], policies: [p] }
policies:
  - name: p
    statements:
      - { sid: ReadAll, effect: allow, actions: [GET], routes: ["*"] }
      - { sid: NoContractors, effect: deny, actions: ["*"], routes: [api], conditions: { claims: { email: "*@contractor.example" } } }
upstreams: [{ name: api, url: "http://127.0.0.1:9" }]
routes: [{ id: api, path: /api/*, upstream: api }]
`, 'case.yaml')
if (!loaded.config) throw new Error(JSON.stringify(loaded.diagnostics))
const access = compileAccess(loaded.config)
const issuer = jwtIssuers(loaded.config)[0]!
const rule = access.roles[0]!.rules[0]!
const deny = access.statements.get('p')![1]!
const identity = (claims: Record<string, unknown>) => identityFromClaims(issuer, { iss: issuer.issuer, aud: 'api', exp: 2e9, sub: 'svc-1', ...claims })
const HINT = ' (only letter case differs: claims and subjects match case-sensitively)'

describe('a mismatch only in letter case is matched as written, and explained so', () => {
  it('a trust rule\'s claim and subject', () => {
    expect(ruleMismatch(rule, identity({ groups: ['finance'] }))).toBe(`claim groups (1 values) is ["finance"], not "Finance" or "Ops"${HINT}`)
    expect(ruleMismatch(rule, identity({ groups: ['hr'] }))).toBe('claim groups (1 values) is ["hr"], not "Finance" or "Ops"')
    expect(ruleMismatch(rule, identity({ sub: 'SVC-1', groups: ['Ops'] }))).toBe(`subject "SVC-1" does not match "svc-*"${HINT}`)
    expect(ruleMismatch(rule, identity({ sub: 'bot-1', groups: ['Ops'] }))).toBe('subject "bot-1" does not match "svc-*"')
    expect(ruleMismatch(rule, identity({ groups: ['Ops'] }))).toBeNull()
    expect(access.resolver.rolesFor(identity({ groups: ['ops'] }))).toEqual([])
  })

  it('a statement\'s claim condition', () => {
    const claims = identity({ email: 'Bob@Contractor.example' }).claims
    const mismatch = statementMismatch(deny, 'GET', '10.0.0.1', claims)
    expect(mismatch).not.toBeNull()
    expect(describeClaimMismatch(mismatch as Exclude<typeof mismatch, null | 'action' | 'source_ip'>, claims)).toBe(`claim email is "Bob@Contractor.example", not "*@contractor.example"${HINT}`)
  })
})
