// Found by the access probe: a deny conditioned on a claim was skipped when the token did not carry
// that claim's value but pointed to it elsewhere (OpenID Connect Core §5.6.2, `_claim_names`): Entra
// ID sends such a pointer instead of `groups` for a member of more than 200 groups, so the people
// in the most groups escaped `deny … claims: { groups: contractors }` and were allowed. A claim whose
// value is withheld may hold anything: a deny on it applies (fail closed), while an allow on it still
// does not (its conditions are not shown to hold), and a claim simply absent stays absent.
import { describe, expect, it } from 'vitest'
import { compileAccess, evaluateAccess } from '../../../src/access/index.ts'
import { jwtIssuers, loadConfigText } from '../../../src/config/index.ts'
import { identityFromClaims } from '../../../src/identity/index.ts'

const loaded = loadConfigText(`
issuers: [{ name: corp, issuer: "https://corp.example/", audiences: [api] }]
roles: [{ name: staff, assumed_by: [{ issuer: corp }], policies: [staff] }]
policies:
  - name: staff
    statements:
      - { sid: ReadAll, effect: allow, actions: [GET], routes: ["*"] }
      - { sid: NoContractors, effect: deny, actions: ["*"], routes: [payroll], conditions: { claims: { groups: contractors } } }
      - { sid: NoAcmeContractors, effect: deny, actions: ["*"], routes: [bonus], conditions: { claims: { groups: contractors, tenant: acme } } }
      - { sid: AdminsWrite, effect: allow, actions: [POST], routes: [bonus], conditions: { claims: { groups: admins } } }
upstreams: [{ name: api, url: "http://127.0.0.1:9" }]
routes:
  - { id: payroll, methods: [GET], path: /payroll, upstream: api }
  - { id: bonus, methods: [GET, POST], path: /bonus, upstream: api }
`, 'withheld.yaml')
if (!loaded.config) throw new Error(JSON.stringify(loaded.diagnostics))
const config = loaded.config
const access = compileAccess(config)
const issuer = jwtIssuers(config)[0]!

function decide(claims: Record<string, unknown>, routeId: string, method = 'GET') {
  const identity = identityFromClaims(issuer, { iss: issuer.issuer, aud: 'api', exp: 2e9, sub: 'bob', ...claims })
  const { decision } = evaluateAccess(access, identity, { policy: access.policyFor(routeId) }, method, '10.0.0.1')
  return [decision.reason, decision.statement?.sid ?? null]
}

/** Entra's groups overage: no groups, a pointer to where they are. */
const OVERAGE = { _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: 'https://graph.microsoft.com/v1.0/users/bob/getMemberObjects' } } }

describe('a deny conditioned on a claim whose value the token withholds (_claim_names)', () => {
  it('applies, as it does to a token that carries the value', () => {
    expect(decide({ groups: ['contractors'] }, 'payroll')).toEqual(['explicit_deny', 'NoContractors'])
    expect(decide(OVERAGE, 'payroll')).toEqual(['explicit_deny', 'NoContractors'])
  })

  it('does not apply when another of its conditions fails, nor when the claim is simply absent', () => {
    expect(decide({ ...OVERAGE, tenant: 'globex' }, 'bonus')).toEqual(['allowed', 'ReadAll'])
    expect(decide({ ...OVERAGE, tenant: 'acme' }, 'bonus')).toEqual(['explicit_deny', 'NoAcmeContractors'])
    expect(decide({}, 'payroll')).toEqual(['allowed', 'ReadAll'])
  })

  it('an allow conditioned on a withheld claim still does not apply', () => {
    expect(decide({ groups: ['admins'] }, 'bonus', 'POST')).toEqual(['allowed', 'AdminsWrite'])
    expect(decide(OVERAGE, 'bonus', 'POST')).toEqual(['implicit_deny', null])
  })
})
