// Roles and policies end to end: real tokens from a real provider, the 403s a BI tool and an
// agent would see, the admin API, `bouncer explain` and the check warnings.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Explanation } from '../../src/gateway/explain.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'access-test-admin-token-0123456789'
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let dir: string
let configFile: string

function accessConfig(issuer: string) {
  return {
    admin: { token: ADMIN },
    issuers: [{ name: 'corp-sso', issuer, audiences: [AUDIENCE] }],
    roles: [
      { name: 'looker-reports', description: 'Scheduled dashboard refreshes', assumed_by: [{ issuer: 'corp-sso', subject: 'looker-*', claims: { tenant: 'acme' } }], policies: ['read-sales'] },
      { name: 'analytics-agent', assumed_by: [{ issuer: 'corp-sso', subject: 'analytics-agent', claims: { groups: 'agents' } }], policies: ['agent-reports'] },
    ],
    policies: [
      {
        name: 'read-sales',
        statements: [
          { sid: 'AllowSalesReads', effect: 'allow', actions: ['GET', 'HEAD'], routes: ['sales.*'], conditions: { claims: { tenant: 'acme' } } },
          { sid: 'NoCustomerPII', effect: 'deny', actions: ['*'], routes: ['sales.customers'] },
        ],
      },
      { name: 'agent-reports', statements: [{ sid: 'AgentDailyOnly', effect: 'allow', actions: ['GET'], routes: ['sales.daily'] }] },
    ],
    upstreams: [{ name: 'sales-api', url: upstream.url }],
    routes: [
      { id: 'sales.daily', methods: ['GET', 'HEAD'], path: '/sales/daily/:region', upstream: 'sales-api', upstream_path: '/v1/reports/daily/:region' },
      { id: 'sales.customers', methods: ['GET'], path: '/sales/customers', upstream: 'sales-api' },
    ],
  }
}

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway(accessConfig(idp.issuer))
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'keys')
  dir = await mkdtemp(join(tmpdir(), 'bouncer-access-'))
  configFile = join(dir, 'bouncer.yaml')
  await writeFile(configFile, stringify({ ...accessConfig(idp.issuer), server: { listen: '127.0.0.1:0' }, audit: { sinks: [] } }))
})

/**
 * A second gateway, for the two tests below whose statements the first has not (a deny on GET of
 * sales.regions, a route of its own; a deny on sales.daily for one scope): one gateway with both,
 * started for the first test that needs it, as neither statement touches the other's route.
 */
let extended: Promise<TestGateway> | undefined
function extendedGateway(): Promise<TestGateway> {
  extended ??= (async () => {
    const config = accessConfig(idp.issuer)
    const statements: Array<Record<string, unknown>> = config.policies[0]?.statements ?? []
    statements.push({ sid: 'NoRegionReads', effect: 'deny', actions: ['GET'], routes: ['sales.regions'] })
    statements.push({ sid: 'NoFrozenReports', effect: 'deny', actions: ['*'], routes: ['sales.daily'], conditions: { claims: { scope: 'reports:frozen' } } })
    config.routes.push({ id: 'sales.regions', methods: ['GET', 'HEAD'], path: '/sales/regions', upstream: 'sales-api', upstream_path: '/v1/regions' })
    const started = await startTestGateway(config)
    await waitFor(() => started.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'keys')
    return started
  })()
  return extended
}

afterAll(async () => {
  await (await extended?.catch(() => undefined))?.close()
  await gateway.close()
  await upstream.close()
  await idp.stop()
  await rm(dir, { recursive: true, force: true })
})

async function get(path: string, token: string) {
  const res = await request(`${gateway.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
}

describe('a reports service account with a real token', () => {
  it('reaches its allowed route', async () => {
    const res = await get('/sales/daily/eu', await idp.token('looker-reports'))
    expect(res.status).toBe(200)
    expect(res.body.url).toBe('/v1/reports/daily/eu')
  })

  it('gets 403 policy_denied on the PII route, naming the statement that denied it', async () => {
    const received = upstream.received.length
    const res = await get('/sales/customers', await idp.token('looker-reports'))
    expect(res.status).toBe(403)
    expect(res.body).toMatchObject({ code: 'policy_denied', detail: 'Statement "NoCustomerPII" of policy "read-sales" denies GET on route "sales.customers".' })
    expect(upstream.received.length).toBe(received) // never forwarded
  })
})

describe('other callers', () => {
  it('the agent is denied the PII route: no statement allows it', async () => {
    const res = await get('/sales/customers', await idp.token('analytics-agent'))
    expect(res.status).toBe(403)
    expect(res.body).toMatchObject({ code: 'policy_denied', detail: 'No statement allows GET on route "sales.customers" for role analytics-agent.' })
    expect((await get('/sales/daily/us', await idp.token('analytics-agent'))).status).toBe(200)
  })

  it('a verified caller that no trust rule names gets 403 no_role', async () => {
    const res = await get('/sales/daily/eu', await idp.token('no-tenant'))
    expect(res.status).toBe(403)
    expect(res.body).toMatchObject({ code: 'no_role', detail: `No role's trust rule matches issuer "corp-sso", subject "no-tenant".` })
  })
})

describe('a deny on GET', () => {
  // HEAD is GET without the body (RFC 9110 §9.3.2): Express, Spring and Go's ServeMux run the GET
  // handler for it, and its answer's headers are the GET's. A deny naming GET let HEAD through.
  it('refuses HEAD too, in the gateway and in POST /api/explain, and lists HEAD among the deny\'s actions', async () => {
    const denying = await extendedGateway() // NoRegionReads: a deny on GET
    const token = await idp.token('looker-reports')
    const received = upstream.received.length
    const res = await request(`${denying.url}/sales/regions`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } })
    await res.body.dump()
    expect(res.statusCode).toBe(403)
    expect(upstream.received.length).toBe(received) // never forwarded
    const explained = await request(`${denying.adminUrl}/api/explain`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ method: 'HEAD', path: '/sales/regions', token }) })
    expect(((await explained.body.json()) as Explanation).decision).toMatchObject({ effect: 'deny', status: 403, code: 'policy_denied', statement: 'NoRegionReads' })
    const policies = (await (await request(`${denying.adminUrl}/api/policies`, { headers: { authorization: `Bearer ${ADMIN}` } })).body.json()) as Array<{ statements: Array<{ sid: string; actions: string[] }> }>
    expect(policies[0]?.statements.find((s) => s.sid === 'NoRegionReads')?.actions).toEqual(['GET', 'HEAD'])
  })
})

describe('an allow on GET', () => {
  // A route taking GET takes its HEAD (the router), and the upstream answers it with the GET
  // handler: an allow naming GET alone answered `curl -I` 403, as nginx's limit_except GET does not.
  it('allows HEAD too, in the gateway and in POST /api/explain', async () => {
    const token = await idp.token('analytics-agent') // AgentDailyOnly: actions [GET]
    const res = await request(`${gateway.url}/sales/daily/us`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } })
    await res.body.dump()
    expect(res.statusCode).toBe(200)
    expect(upstream.received.at(-1)).toMatchObject({ method: 'HEAD', url: '/v1/reports/daily/us' })
    const explained = await request(`${gateway.adminUrl}/api/explain`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ method: 'HEAD', path: '/sales/daily/us', token }) })
    expect(((await explained.body.json()) as Explanation).decision).toMatchObject({ effect: 'allow', statement: 'AgentDailyOnly' })
  })
})

describe('a condition on one scope', () => {
  // OAuth writes scopes as one space-separated string (oidc-provider, Keycloak, Auth0; Entra ID's
  // scp): a deny on one scope let a token holding it beside others through.
  it('matches a token whose scope holds it among others, in the gateway and in bouncer explain', async () => {
    const scoped = await extendedGateway() // NoFrozenReports: a deny on sales.daily for the scope reports:frozen
    const file = scoped.file
    const frozen = await idp.mint({ sub: 'looker-reports', tenant: 'acme', scope: 'openid reports:frozen' })
    const res = await request(`${scoped.url}/sales/daily/eu`, { headers: { authorization: `Bearer ${frozen}` } })
    expect(res.statusCode).toBe(403)
    expect(await res.body.json()).toMatchObject({ code: 'policy_denied', detail: 'Statement "NoFrozenReports" of policy "read-sales" denies GET on route "sales.daily".' })
    // The whole string, and another scope, as before.
    const whole = await request(`${scoped.url}/sales/daily/eu`, { headers: { authorization: `Bearer ${await idp.mint({ sub: 'looker-reports', tenant: 'acme', scope: 'reports:frozen' })}` } })
    await whole.body.dump()
    expect(whole.statusCode).toBe(403)
    const other = await request(`${scoped.url}/sales/daily/eu`, { headers: { authorization: `Bearer ${await idp.mint({ sub: 'looker-reports', tenant: 'acme', scope: 'openid reports:frozen-not' })}` } })
    await other.body.dump()
    expect(other.statusCode).toBe(200)
    const explained = await runCliInProcess(['explain', '--config', file, '--method', 'GET', '--path', '/sales/daily/eu', '--token', frozen])
    expect(explained.stdout).toContain('+ deny  NoFrozenReports (policy read-sales, role looker-reports): matches')
  })
})

describe('the admin API', () => {
  const admin = (path: string, body?: object) =>
    request(`${gateway.adminUrl}${path}`, { method: body ? 'POST' : 'GET', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined })

  it('lists roles and policies', async () => {
    const roles = (await (await admin('/api/roles')).body.json()) as Array<Record<string, unknown>>
    expect(roles[0]).toEqual({ name: 'looker-reports', description: 'Scheduled dashboard refreshes', assumed_by: [{ issuer: 'corp-sso', subject: 'looker-*', claims: { tenant: 'acme' } }], policies: ['read-sales'] })
    const policies = (await (await admin('/api/policies')).body.json()) as Array<{ name: string; statements: Array<{ sid: string }> }>
    expect(policies.map((p) => p.statements.map((s) => s.sid))).toEqual([['AllowSalesReads', 'NoCustomerPII'], ['AgentDailyOnly']])
  })

  it('POST /api/explain explains a real token\'s denial', async () => {
    const res = await admin('/api/explain', { method: 'GET', path: '/sales/customers', token: await idp.token('looker-reports') })
    expect(res.statusCode).toBe(200)
    const explanation = (await res.body.json()) as Explanation
    expect(explanation.decision).toMatchObject({ effect: 'deny', status: 403, code: 'policy_denied', statement: 'NoCustomerPII' })
    expect(explanation.identity).toMatchObject({ source: 'token', signature_checked: false, issuer: 'corp-sso', sub: 'looker-reports' })
    expect(explanation.roles).toEqual([
      { role: 'looker-reports', held: true, rules: [{ rule: 'assumed_by[0]: issuer corp-sso, subject looker-*, tenant=acme', matched: true, why: null }] },
      { role: 'analytics-agent', held: false, rules: [{ rule: 'assumed_by[0]: issuer corp-sso, subject analytics-agent, groups=agents', matched: false, why: 'subject "looker-reports" does not match "analytics-agent"' }] },
    ])
    expect(explanation.statements).toEqual([
      { sid: 'AllowSalesReads', policy: 'read-sales', effect: 'allow', roles: ['looker-reports'], matched: true, why: null },
      { sid: 'NoCustomerPII', policy: 'read-sales', effect: 'deny', roles: ['looker-reports'], matched: true, why: null },
    ])
  })

  it('POST /api/explain refuses a body without method and path', async () => {
    const res = await admin('/api/explain', { claims: {} })
    expect(res.statusCode).toBe(400)
    expect(((await res.body.json()) as { code: string }).code).toBe('bad_request')
  })
})

describe('bouncer explain', () => {
  it('explains a denial so that the reason is plain, and exits 1', async () => {
    const claims = JSON.stringify({ iss: idp.issuer, sub: 'looker-reports', tenant: 'acme' })
    const result = await runCliInProcess(['explain', '--config', configFile, '--method', 'GET', '--path', '/sales/customers', '--claims', claims])
    expect(result.code).toBe(1)
    expect(result.stdout).toContain('Route      sales.customers')
    expect(result.stdout).toContain('+ looker-reports: granted by assumed_by[0]: issuer corp-sso, subject looker-*, tenant=acme')
    expect(result.stdout).toContain('- analytics-agent: not held')
    expect(result.stdout).toContain('+ deny  NoCustomerPII (policy read-sales, role looker-reports): matches')
    expect(result.stdout).toMatch(/Decision {3}DENY: 403 policy_denied: Statement "NoCustomerPII" of policy "read-sales" denies GET on route "sales\.customers"\. An explicit deny wins over any allow\.$/m)
  })

  it('explains an allow, and exits 0', async () => {
    const claims = JSON.stringify({ iss: idp.issuer, sub: 'looker-reports', tenant: 'acme' })
    const result = await runCliInProcess(['explain', '--config', configFile, '--method', 'GET', '--path', '/sales/daily/eu', '--claims', claims])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('Decision   ALLOW: Allowed by statement "AllowSalesReads" of policy "read-sales"; no deny statement matched.')
  })

  it('names the failing condition when nothing allows', async () => {
    const claims = JSON.stringify({ iss: idp.issuer, sub: 'looker-reports', tenant: 'globex' })
    const result = await runCliInProcess(['explain', '--config', configFile, '--method', 'GET', '--path', '/sales/daily/eu', '--claims', claims])
    expect(result.stdout).toContain('- looker-reports: not held (assumed_by[0]: claim tenant is "globex", not "acme")')
    expect(result.stdout).toContain('403 no_role')
  })

  it('--json gives the same explanation as a document, --token decodes a real token', async () => {
    const result = await runCliInProcess(['explain', '--config', configFile, '--method', 'GET', '--path', '/sales/customers', '--token', await idp.token('looker-reports'), '--json'])
    const document = JSON.parse(result.stdout) as Explanation
    expect(document.decision).toMatchObject({ effect: 'deny', code: 'policy_denied', statement: 'NoCustomerPII' })
    expect(document.identity).toMatchObject({ source: 'token', signature_checked: false })
  })

  it('reports what the gateway would refuse about the token itself', async () => {
    const expired = await idp.mint({ sub: 'looker-reports', tenant: 'acme', iat: Math.floor(Date.now() / 1000) - 900, exp: Math.floor(Date.now() / 1000) - 600 })
    const result = await runCliInProcess(['explain', '--config', configFile, '--method', 'GET', '--path', '/sales/daily/eu', '--token', expired])
    expect(result.code).toBe(1)
    expect(result.stdout).toContain('! token_expired')
    expect(result.stdout).toContain('With a valid token, the policies would allow it (statement "AllowSalesReads").')
  })

  it('explains routing refusals too', async () => {
    const result = await runCliInProcess(['explain', '--config', configFile, '--method', 'DELETE', '--path', '/sales/customers', '--claims', '{}'])
    expect(result.stdout).toContain('405 method_not_allowed')
    expect((await runCliInProcess(['explain', '--config', configFile, '--method', 'GET', '--path', '/a/%2e%2e/b', '--claims', '{}'])).stdout).toContain('400 bad_path')
  })
})

describe('bouncer check warnings', () => {
  it('warns about a forward-auth peer outside trusted_proxies, whose requests source_ip conditions would read as the proxy\'s', async () => {
    const file = join(dir, 'forward-auth-peers.yaml')
    const text = (trusted: string) => `server:
  trusted_proxies: [${trusted}]
  forward_auth_peers: [10.0.0.5/32, "2001:db8::/64"]
issuers:
  - { name: corp, issuer: "https://corp.example/", audiences: [api] }
roles:
  - { name: staff, assumed_by: [{ issuer: corp }], policies: [internal] }
policies:
  - name: internal
    statements:
      - { sid: FromTheOffice, effect: allow, actions: [GET], routes: [notes], conditions: { source_ip: [10.0.0.0/8] } }
upstreams:
  - { name: api, url: "http://127.0.0.1:9" }
routes:
  - { id: notes, path: /notes, upstream: api }
`
    await writeFile(file, text('10.0.0.0/24'))
    const result = await runCliInProcess(['check', '--config', file])
    expect(result.code).toBe(0)
    expect(result.stdout).toBe('ok (1 warning)\n')
    expect(result.stderr).toBe(`${file}:3:37: warning: server.forward_auth_peers[1]: 2001:db8::/64 is not in server.trusted_proxies: the requests it describes are decided for the proxy's address, not the client's (source_ip conditions, limits keyed by ip, the audit's source_ip); list it there as well\n`)
    await writeFile(file, text('10.0.0.0/24, "2001:db8::/48"'))
    expect(await runCliInProcess(['check', '--config', file])).toMatchObject({ code: 0, stdout: 'ok\n', stderr: '' })
  })

  it('warns (exit 0) about dead globs, unused policies, roles nobody can hold and overlapping allow/deny', async () => {
    const file = join(dir, 'warnings.yaml')
    await writeFile(file, `issuers:
  - { name: corp, issuer: "https://corp.example/", audiences: [api] }
roles:
  - name: reports
    assumed_by: [{ issuer: corp }]
    policies: [read]
  - name: ghost
    assumed_by: [{ issuer: corp, subject: svc-a, claims: { sub: svc-b } }]
    policies: [read]
policies:
  - name: read
    statements:
      - { sid: ReadAll, effect: allow, actions: [GET], routes: ["sales.*"] }
      - { sid: NoPII, effect: deny, actions: ["*"], routes: [sales.customers] }
      - { sid: Typo, effect: allow, actions: [GET], routes: [slaes.daily] }
  - name: unused
    statements:
      - { effect: allow, actions: [GET], routes: ["*"] }
upstreams:
  - { name: api, url: "http://127.0.0.1:9" }
routes:
  - { id: sales.daily, path: /d, upstream: api }
  - { id: sales.customers, path: /c, upstream: api }
`)
    const result = await runCliInProcess(['check', '--config', file])
    expect(result.code).toBe(0)
    expect(result.stdout).toBe('ok (4 warnings)\n')
    expect(result.stderr.split('\n')).toEqual([
      `${file}:8:17: warning: roles[1].assumed_by: role "ghost" can never be granted: subject "svc-a" contradicts claims.sub`,
      `${file}:13:9: warning: policies[0].statements[0]: allow "ReadAll" overlaps deny "NoPII" for GET, HEAD on sales.customers: the deny wins there (unless their conditions never hold together)`,
      `${file}:15:62: warning: policies[0].statements[2].routes[0]: "slaes.daily" matches no route`,
      `${file}:16:11: warning: policies[1].name: policy "unused" is not used by any role`,
      '',
    ])
  })
})
