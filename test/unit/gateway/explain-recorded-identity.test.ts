// explain's options for a request the gateway recorded (the console's trace, denials and replay,
// admin/replay.ts): `roles`, those the gateway assumed, held instead of those of trust rules, and
// `verified`, the claim checks taken as passed. Only those two steps change: a reviewer found a copy
// of explain's verdict in replay.ts that dropped the route's accept refusal and answered allow.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfigText } from '../../../src/config/index.ts'
import { compileRuntime, createRuntimeDeps, explain, explainGranted, formatExplanation, type ExplainRequest, type Runtime } from '../../../src/gateway/index.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

const SSO = 'https://sso.example.com/'
const PARTNER = 'https://partner.example.com/'
let dir: string
let runtime: Runtime
let deps: ReturnType<typeof createRuntimeDeps>

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-explain-recorded-'))
  const text = `
admin: { token: explain-unit-admin-token-0123456789 }
issuers:
  - { name: sso, issuer: "${SSO}", jwks_uri: "https://sso.example.com/jwks", audiences: ["api://bouncer"] }
  - { name: partner, issuer: "${PARTNER}", jwks_uri: "https://partner.example.com/jwks", audiences: ["api://bouncer"], required_claims: [tenant] }
api_keys: { store: { type: sqlite, path: "${join(dir, 'keys.db')}" }, header: X-Key }
roles:
  - { name: staff, assumed_by: [{ issuer: sso, subject: "staff-*" }], policies: [read] }
  - { name: tenant-admin, assumed_by: [{ issuer: sso, claims: { tenant: acme } }, { issuer: partner }], policies: [write] }
policies:
  - { name: read, statements: [{ sid: Read, effect: allow, actions: [GET], routes: ['*'] }] }
  - { name: write, statements: [{ sid: Write, effect: allow, actions: [POST], routes: ['*'] }] }
upstreams: [{ name: api, url: "http://127.0.0.1:9" }]
routes:
  - { id: api, path: /api/*, upstream: api }
  - { id: keyed, path: /keyed/*, upstream: api, accept: [api_key] }
audit: { sinks: [] }
`
  const loaded = loadConfigText(text, join(dir, 'bouncer.yaml'), {})
  expect(loaded.diagnostics.filter((d) => d.severity === 'error')).toEqual([])
  deps = createRuntimeDeps(createLogger({ level: 'silent' }), { offline: true })
  runtime = compileRuntime(loaded.config!, deps)
})

afterAll(async () => {
  await deps?.closeAll()
  if (dir) await rm(dir, { recursive: true, force: true })
})

const recorded = (method: string, path: string, claims: Record<string, unknown>, more: Partial<ExplainRequest> = {}) =>
  explain(runtime, { method, path, claims, verified: true, ...more })

describe('roles given', () => {
  it('are held instead of those of trust rules, and the line that says so comes first where they differ', () => {
    // tenant-admin is granted on a claim this identity lacks; the gateway assumed it.
    const e = recorded('POST', '/api/x', { iss: SSO, sub: 'staff-1' }, { roles: ['tenant-admin'] })
    expect(e.decision).toMatchObject({ effect: 'allow', statement: 'Write' })
    const of = (role: string) => e.roles.find((r) => r.role === role)
    expect(of('tenant-admin')).toMatchObject({ held: true, rules: [{ rule: expect.stringMatching(/gateway assumed it/), matched: true }, { matched: false }, { matched: false }] })
    // staff: its trust rule matches, but it was not given: not held, and said.
    expect(of('staff')).toMatchObject({ held: false, rules: [{ matched: false, why: expect.stringMatching(/did not assume/) }, { matched: true }] })
    expect(e.statements.map((s) => s.sid)).toEqual(['Write'])
    // The text says the same: a trust rule that matches does not make staff held.
    const text = formatExplanation(e)
    expect(text).toMatch(/\+ tenant-admin: granted by .*gateway assumed it/)
    expect(text).toMatch(/- staff: not held/)
  })

  it('that agree with trust rules add no line', () => {
    const e = recorded('GET', '/api/x', { iss: SSO, sub: 'staff-1' }, { roles: ['staff'] })
    expect(e.decision).toMatchObject({ effect: 'allow', statement: 'Read' })
    expect(e.roles.find((r) => r.role === 'staff')?.rules).toEqual([expect.objectContaining({ rule: expect.stringMatching(/^assumed_by\[0\]/), matched: true })])
  })

  it('none given is no role, whatever trust rules say', () => {
    expect(recorded('GET', '/api/x', { iss: SSO, sub: 'staff-1' }, { roles: [] }).decision).toMatchObject({ status: 403, code: 'no_role' })
  })

  it('leave the roles trust rules grant to be read from the same explanation (explainGranted): those held without them', () => {
    const cases: Array<[Record<string, unknown>, string[]]> = [
      [{ iss: SSO, sub: 'staff-1' }, ['tenant-admin']],
      [{ iss: SSO, sub: 'staff-1', tenant: 'acme' }, ['staff']],
      [{ iss: PARTNER, sub: 'p-1' }, []],
      [{ iss: SSO, sub: 'nobody' }, ['staff', 'tenant-admin']],
    ]
    for (const [claims, roles] of cases) {
      const withoutRoles = recorded('GET', '/api/x', claims).roles.filter((r) => r.held).map((r) => r.role)
      const { explanation, granted } = explainGranted(runtime, { method: 'GET', path: '/api/x', claims, verified: true, roles })
      expect([...granted].sort(), JSON.stringify(claims)).toEqual(withoutRoles.sort())
      expect(explanation).toEqual(recorded('GET', '/api/x', claims, { roles }))
    }
  })
})

describe('a verified identity', () => {
  it('is not refused for a required claim its recorded claims do not carry', () => {
    const claims = { iss: PARTNER, sub: 'p-1' }
    expect(explain(runtime, { method: 'POST', path: '/api/x', claims }).decision).toMatchObject({ status: 401, code: 'claim_missing' })
    const e = recorded('POST', '/api/x', claims)
    expect(e.identity?.problems).toEqual([])
    expect(e.decision).toMatchObject({ effect: 'allow', statement: 'Write' })
  })

  it('is still refused where the route does not accept its credential, with roles given or not', () => {
    for (const more of [{}, { roles: ['staff'] }]) {
      const e = recorded('GET', '/keyed/x', { iss: SSO, sub: 'staff-1' }, more)
      expect(e.decision, JSON.stringify(more)).toMatchObject({ effect: 'deny', status: 401, code: 'missing_token' })
      expect(e.decision.reason).toMatch(/does not accept \(accept: api_key\)[\s\S]*would allow it \(statement "Read"\)/)
    }
  })

  it('is still refused where its issuer is no longer trusted', () => {
    expect(recorded('GET', '/api/x', { iss: 'https://gone.example.com/', sub: 'staff-1' }, { roles: ['staff'] }).decision).toMatchObject({ status: 401, code: 'issuer_unknown' })
  })
})
