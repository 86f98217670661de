// SPEC "Decisions" steps 3–4 as a table: identity × route × method × client address → decision
// and the statement that made it.
import { describe, expect, it } from 'vitest'
import { compileAccess, evaluateAccess } from '../../../src/access/index.ts'
import { jwtIssuers, loadConfigText } from '../../../src/config/index.ts'
import { identityFromClaims } from '../../../src/identity/index.ts'

const CONFIG = `
issuers:
  - { name: corp, issuer: "https://corp.example/", audiences: [api] }
  - { name: partner, issuer: "https://partner.example/", audiences: [api] }
roles:
  - name: reports                      # subject prefix glob + claim equality
    assumed_by: [{ issuer: corp, subject: "svc-looker-*", claims: { azp: looker-prod } }]
    policies: [read-sales, no-pii]
  - name: agent                        # subject suffix glob + list claim
    assumed_by: [{ issuer: corp, subject: "*-agent", claims: { groups: agents } }]
    policies: [agent-read]
  - name: batch                        # ? and middle glob + a claim glob
    assumed_by: [{ issuer: corp, subject: "job-?-*-nightly", claims: { client_id: "etl-*" } }]
    policies: [batch-write]
  - name: partner                      # a nested (dotted) list claim
    assumed_by: [{ issuer: partner, claims: { realm_access.roles: partner-reader } }]
    policies: [partner-read]
  - name: admins                       # any of several values
    assumed_by: [{ issuer: corp, claims: { groups: [platform-admins, sre] } }]
    policies: [admin-all]
policies:
  - name: read-sales
    statements:
      - { sid: ReadSales, effect: allow, actions: [GET, HEAD], routes: ["sales.*"] }
  - name: no-pii
    statements:
      - { sid: NoPII, effect: deny, actions: ["*"], routes: ["*.customers"] }
  - name: agent-read
    statements:
      - { sid: AgentDaily, effect: allow, actions: [GET], routes: [sales.daily], conditions: { source_ip: [10.0.0.0/8, "2001:db8::/32"] } }
      - { sid: AgentExport, effect: allow, actions: [GET], routes: ["*.export"], conditions: { claims: { tier: gold } } }
  - name: batch-write
    statements:
      - { sid: BatchUpload, effect: allow, actions: [POST, PUT], routes: ["ingest.*"] }
      - { sid: BatchNoDelete, effect: deny, actions: [DELETE], routes: ["*"] }
  - name: partner-read
    statements:
      - { sid: PartnerDaily, effect: allow, actions: [GET], routes: [sales.daily], conditions: { source_ip: ["::1/128", 192.0.2.0/24] } }
  - name: admin-all
    statements:
      - { sid: AdminEverything, effect: allow, actions: ["*"], routes: ["*"] }
upstreams:
  - { name: api, url: "http://127.0.0.1:9" }
routes:
  - { id: sales.daily, methods: [GET, HEAD], path: "/sales/daily/:region", upstream: api }
  - { id: sales.customers, methods: [GET], path: /sales/customers, upstream: api }
  - { id: sales.export, methods: [GET], path: /sales/export, upstream: api }
  - { id: ingest.orders, methods: [POST, PUT, DELETE], path: /ingest/orders, upstream: api }
  - { id: ops.health, methods: [GET], path: /ops/health, upstream: api }
`

const loaded = loadConfigText(CONFIG, 'decisions.yaml')
if (!loaded.config) throw new Error(JSON.stringify(loaded.diagnostics))
const config = loaded.config
const access = compileAccess(config)

const reports = { sub: 'svc-looker-prod', azp: 'looker-prod' }
const agent = { sub: 'sales-agent', groups: ['readers', 'agents'] }
const batch = { sub: 'job-7-orders-nightly', client_id: 'etl-prod' }
const partner = { sub: 'acme-bi', realm_access: { roles: ['viewer', 'partner-reader'] } }
const admin = { sub: 'alice', groups: ['sre'] }

type Expected = ['allow', string] | ['no_role'] | ['implicit_deny'] | ['explicit_deny', string]

const CASES: Array<[name: string, issuer: 'corp' | 'partner', claims: Record<string, unknown>, route: string, method: string, ip: string, expected: Expected]> = [
  ['reports reads the daily report', 'corp', reports, 'sales.daily', 'GET', '10.1.1.1', ['allow', 'ReadSales']],
  ['reports may HEAD it too', 'corp', reports, 'sales.daily', 'HEAD', '10.1.1.1', ['allow', 'ReadSales']],
  ['reports may not POST', 'corp', reports, 'sales.daily', 'POST', '10.1.1.1', ['implicit_deny']],
  ['reports on the PII route: deny overrides the sales.* allow', 'corp', reports, 'sales.customers', 'GET', '10.1.1.1', ['explicit_deny', 'NoPII']],
  ['route glob sales.* covers the export', 'corp', reports, 'sales.export', 'GET', '10.1.1.1', ['allow', 'ReadSales']],
  ['reports with another azp holds no role', 'corp', { ...reports, azp: 'looker-dev' }, 'sales.daily', 'GET', '10.1.1.1', ['no_role']],
  ['a subject outside the prefix glob holds no role', 'corp', { ...reports, sub: 'svc-tableau-prod' }, 'sales.daily', 'GET', '10.1.1.1', ['no_role']],
  ['the prefix glob matches dots too', 'corp', { ...reports, sub: 'svc-looker-eu.prod' }, 'sales.daily', 'GET', '10.1.1.1', ['allow', 'ReadSales']],
  ['globs are case-sensitive', 'corp', { ...reports, sub: 'SVC-looker-prod' }, 'sales.daily', 'GET', '10.1.1.1', ['no_role']],
  ['reports has nothing on ops.health', 'corp', reports, 'ops.health', 'GET', '10.1.1.1', ['implicit_deny']],
  ['agent from 10/8', 'corp', agent, 'sales.daily', 'GET', '10.9.8.7', ['allow', 'AgentDaily']],
  ['agent from outside the CIDRs', 'corp', agent, 'sales.daily', 'GET', '11.0.0.1', ['implicit_deny']],
  ['agent from an IPv6 CIDR', 'corp', agent, 'sales.daily', 'GET', '2001:db8::5', ['allow', 'AgentDaily']],
  ['agent from another IPv6 network', 'corp', agent, 'sales.daily', 'GET', '2001:db9::5', ['implicit_deny']],
  ['agent from an IPv4-mapped IPv6 address in 10/8', 'corp', agent, 'sales.daily', 'GET', '::ffff:10.9.9.9', ['allow', 'AgentDaily']],
  ['a list claim must contain the value', 'corp', { ...agent, groups: ['readers'] }, 'sales.daily', 'GET', '10.9.8.7', ['no_role']],
  ['a scalar claim equal to the value also holds', 'corp', { ...agent, groups: 'agents' }, 'sales.daily', 'GET', '10.9.8.7', ['allow', 'AgentDaily']],
  ['the subject suffix glob', 'corp', { ...agent, sub: 'billing-agents' }, 'sales.daily', 'GET', '10.9.8.7', ['no_role']],
  ['a claim condition on a statement holds', 'corp', { ...agent, tier: 'gold' }, 'sales.export', 'GET', '11.0.0.1', ['allow', 'AgentExport']],
  ['a claim condition on a statement fails', 'corp', { ...agent, tier: 'silver' }, 'sales.export', 'GET', '11.0.0.1', ['implicit_deny']],
  ['a missing condition claim fails', 'corp', agent, 'sales.export', 'GET', '11.0.0.1', ['implicit_deny']],
  ['agent on PII: no statement of its role allows it', 'corp', agent, 'sales.customers', 'GET', '10.9.8.7', ['implicit_deny']],
  ['batch uploads', 'corp', batch, 'ingest.orders', 'POST', '10.2.2.2', ['allow', 'BatchUpload']],
  ['batch replaces', 'corp', batch, 'ingest.orders', 'PUT', '10.2.2.2', ['allow', 'BatchUpload']],
  ['batch may never DELETE (deny on "*")', 'corp', batch, 'ingest.orders', 'DELETE', '10.2.2.2', ['explicit_deny', 'BatchNoDelete']],
  ['? matches exactly one character', 'corp', { ...batch, sub: 'job-77-orders-nightly' }, 'ingest.orders', 'POST', '10.2.2.2', ['no_role']],
  ['a claim glob that does not match', 'corp', { ...batch, client_id: 'ml-prod' }, 'ingest.orders', 'POST', '10.2.2.2', ['no_role']],
  ['batch cannot read sales', 'corp', batch, 'sales.daily', 'GET', '10.2.2.2', ['implicit_deny']],
  ['partner from ::1', 'partner', partner, 'sales.daily', 'GET', '::1', ['allow', 'PartnerDaily']],
  ['partner from 192.0.2.0/24', 'partner', partner, 'sales.daily', 'GET', '192.0.2.10', ['allow', 'PartnerDaily']],
  ['partner from 127.0.0.1', 'partner', partner, 'sales.daily', 'GET', '127.0.0.1', ['implicit_deny']],
  ['the same claims from another issuer hold no partner role', 'corp', partner, 'sales.daily', 'GET', '::1', ['no_role']],
  ['partner without the nested claim', 'partner', { sub: 'acme-bi' }, 'sales.daily', 'GET', '::1', ['no_role']],
  ['an admin may do anything', 'corp', admin, 'ops.health', 'GET', '10.3.3.3', ['allow', 'AdminEverything']],
  ['an admin may DELETE ingest', 'corp', admin, 'ingest.orders', 'DELETE', '10.3.3.3', ['allow', 'AdminEverything']],
  ['reports + admins: the deny of one role wins over the allow of another', 'corp', { ...reports, groups: ['sre'] }, 'sales.customers', 'GET', '10.1.1.1', ['explicit_deny', 'NoPII']],
  ['reports + admins: the admin allow covers POST', 'corp', { ...reports, groups: ['sre'] }, 'sales.daily', 'POST', '10.1.1.1', ['allow', 'AdminEverything']],
  ['reports + admins: the first allow in file order names the decision', 'corp', { ...reports, groups: ['sre'] }, 'sales.daily', 'GET', '10.1.1.1', ['allow', 'ReadSales']],
  ['batch + admins: the batch deny wins', 'corp', { ...batch, groups: ['platform-admins'] }, 'ingest.orders', 'DELETE', '10.2.2.2', ['explicit_deny', 'BatchNoDelete']],
  ['reports + agent: one role allows even when the other fails its condition', 'corp', { sub: 'svc-looker-agent', azp: 'looker-prod', groups: ['agents'] }, 'sales.daily', 'GET', '11.0.0.1', ['allow', 'ReadSales']],
  ['reports + agent on PII: deny', 'corp', { sub: 'svc-looker-agent', azp: 'looker-prod', groups: ['agents'] }, 'sales.customers', 'GET', '10.9.8.7', ['explicit_deny', 'NoPII']],
  ['an identity no rule names', 'corp', { sub: 'someone' }, 'sales.daily', 'GET', '10.1.1.1', ['no_role']],
]

describe('access decisions', () => {
  it.each(CASES)('%s', (_name, issuerName, claims, routeId, method, ip, expected) => {
    const issuer = jwtIssuers(config).find((i) => i.name === issuerName)!
    const identity = identityFromClaims(issuer, { iss: issuer.issuer, ...claims })
    const { decision } = evaluateAccess(access, identity, { policy: access.policyFor(routeId) }, method, ip)
    const actual = decision.effect === 'allow' ? ['allow', decision.statement.sid] : decision.reason === 'explicit_deny' ? ['explicit_deny', decision.statement.sid] : [decision.reason]
    expect(actual).toEqual(expected)
  })

  it('covers at least 40 cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40)
  })
})
