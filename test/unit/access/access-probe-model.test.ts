// Property (the access probe): for generated configs (roles with trust rules on subject globs and
// claims, policies whose statements name routes by glob, methods, addresses and claims) and generated
// callers, the compiled decision (compileAccess, evaluateAccess) is the one SPEC "Decisions" steps
// 3–4 describe, written out plainly here: the roles whose trust rule matches; a matching deny in any
// of them wins, else a matching allow, else 403; no role, no_role. A statement naming GET names HEAD.
import fc from 'fast-check'
import { expect, it } from 'vitest'
import { stringify } from 'yaml'
import { compileAccess, evaluateAccess } from '../../../src/access/index.ts'
import { loadConfigText } from '../../../src/config/index.ts'
import type { Identity } from '../../../src/request/index.ts'

const ROUTES = ['a', 'a.b', 'a.b.c', 'ab', 'b', 'mcp:x']
const ROUTE_GLOBS = ['*', 'a', 'a.*', 'a?b', '*.c', 'b', 'a*', 'mcp:*', '*b*']
const METHODS = ['GET', 'HEAD', 'POST', 'DELETE']
const SUBJECT_GLOBS = ['*', 'u-*', 'u-?', 'x', '*1', 'u-*-z']
const CLAIM_NAMES = ['tenant', 'groups', 'scope', 'org.unit']
const CLAIM_GLOBS = ['acme', 'ac*', 'admin', '1', 'true', 'r?']
const NETWORKS = ['10.0.0.0/8', '192.0.2.0/24', '2001:db8::/32']

const claimConditions = fc.option(fc.dictionary(fc.constantFrom(...CLAIM_NAMES), fc.oneof(fc.constantFrom(...CLAIM_GLOBS), fc.uniqueArray(fc.constantFrom(...CLAIM_GLOBS), { minLength: 1, maxLength: 2 })), { minKeys: 1, maxKeys: 2 }), { nil: undefined })

const statement = fc.record({
  effect: fc.constantFrom('allow', 'deny'),
  actions: fc.oneof(fc.constant(['*']), fc.uniqueArray(fc.constantFrom(...METHODS), { minLength: 1, maxLength: 3 })),
  routes: fc.uniqueArray(fc.constantFrom(...ROUTE_GLOBS), { minLength: 1, maxLength: 2 }),
  source_ip: fc.option(fc.uniqueArray(fc.constantFrom(...NETWORKS), { minLength: 1, maxLength: 2 }), { nil: undefined }),
  claims: claimConditions,
})

const configArb = fc.record({
  roles: fc.array(fc.record({
    rules: fc.array(fc.record({ subject: fc.option(fc.constantFrom(...SUBJECT_GLOBS), { nil: undefined }), claims: claimConditions }), { minLength: 1, maxLength: 2 }),
    policies: fc.uniqueArray(fc.integer({ min: 0, max: 2 }), { maxLength: 2 }),
  }), { minLength: 1, maxLength: 3 }),
  policies: fc.array(fc.array(statement, { minLength: 1, maxLength: 3 }), { minLength: 3, maxLength: 3 }),
})

const claimValue = fc.oneof(fc.constantFrom<unknown>('acme', 'ACME', 'acorn', 'admin', 'openid admin', 'rx', 1, true, null, 'r'), fc.array(fc.constantFrom<unknown>('acme', 'admin', 1, 'rz', ['acme']), { maxLength: 3 }))
const callerArb = fc.record({
  sub: fc.constantFrom('u-1', 'u-12', 'u-a-z', 'x', 'y1', '*'),
  claims: fc.dictionary(fc.constantFrom('tenant', 'groups', 'scope', 'org.unit'), claimValue, { maxKeys: 4 }),
  org: fc.option(fc.record({ unit: claimValue }), { nil: undefined }),
  method: fc.constantFrom(...METHODS),
  route: fc.constantFrom(...ROUTES.filter((id) => !id.startsWith('mcp:'))),
  ip: fc.constantFrom('10.1.2.3', '::ffff:10.1.2.3', '192.0.2.9', '2001:db8::5', '203.0.113.1'),
})

type Generated = { roles: Array<{ rules: Array<{ subject?: string; claims?: Record<string, string | string[]> }>; policies: number[] }>; policies: Array<Array<{ effect: string; actions: string[]; routes: string[]; source_ip?: string[]; claims?: Record<string, string | string[]> }>> }

function yamlOf(g: Generated): string {
  return stringify({
    issuers: [{ name: 'idp', issuer: 'https://idp.example/', audiences: ['api'], jwks_uri: 'https://idp.example/keys' }],
    roles: g.roles.map((r, i) => ({ name: `r${i}`, assumed_by: r.rules.map((rule) => ({ issuer: 'idp', ...(rule.subject ? { subject: rule.subject } : {}), ...(rule.claims ? { claims: rule.claims } : {}) })), policies: r.policies.map((p) => `p${p}`) })),
    policies: g.policies.map((statements, i) => ({ name: `p${i}`, statements: statements.map((s, j) => ({ sid: `p${i}s${j}`, effect: s.effect, actions: s.actions, routes: s.routes, ...(s.source_ip || s.claims ? { conditions: { ...(s.source_ip ? { source_ip: s.source_ip } : {}), ...(s.claims ? { claims: s.claims } : {}) } } : {}) })) })),
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: ROUTES.filter((id) => !id.startsWith('mcp:')).map((id, i) => ({ id, path: `/r${i}`, upstream: 'api', methods: ['*'] })),
    mcp: { path: '/mcp', resource: 'https://gw.example/mcp', tools: [{ route: 'b', name: 'x' }] },
  })
}

// The model: SPEC's words, with none of the gateway's code.
const globRe = (glob: string) => new RegExp(`^${glob.split('').map((c) => (c === '*' ? '[\\s\\S]*' : c === '?' ? '[\\s\\S]' : c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('')}$`)
const scalarText = (v: unknown) => (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : null)
function valueOf(claims: Record<string, unknown>, name: string): unknown {
  if (name in claims && Object.hasOwn(claims, name)) return claims[name]
  let v: unknown = claims
  for (const part of name.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined
  return v
}
function claimHolds(claims: Record<string, unknown>, name: string, wanted: string | string[]): boolean {
  const globs = (Array.isArray(wanted) ? wanted : [wanted]).map(globRe)
  const value = valueOf(claims, name)
  const texts = Array.isArray(value) ? value.map(scalarText) : [scalarText(value)]
  if ((name === 'scope' || name === 'scp') && typeof value === 'string') texts.push(...value.split(' ').filter((s) => s !== ''))
  return texts.some((t) => t !== null && globs.some((g) => g.test(t)))
}
const allHold = (claims: Record<string, unknown>, conditions?: Record<string, string | string[]>) => Object.entries(conditions ?? {}).every(([n, w]) => claimHolds(claims, n, w))
function inNetwork(ip: string, cidrs: string[]): boolean {
  const plain = ip.startsWith('::ffff:') ? ip.slice(7) : ip
  return cidrs.some((cidr) => (cidr === '10.0.0.0/8' ? plain.startsWith('10.') : cidr === '192.0.2.0/24' ? plain.startsWith('192.0.2.') : plain.toLowerCase().startsWith('2001:db8:')))
}

function modelDecision(g: Generated, caller: { sub: string; claims: Record<string, unknown>; method: string; route: string; ip: string }): string {
  const held = g.roles.filter((r) => r.rules.some((rule) => (rule.subject === undefined || globRe(rule.subject).test(caller.sub)) && allHold(caller.claims, rule.claims)))
  if (held.length === 0) return 'no_role'
  const applying = held.flatMap((r) => r.policies.flatMap((p) => g.policies[p] ?? [])).filter((s) =>
    s.routes.some((glob) => globRe(glob).test(caller.route))
    && (s.actions.includes('*') || s.actions.includes(caller.method) || (caller.method === 'HEAD' && s.actions.includes('GET')))
    && (s.source_ip === undefined || inNetwork(caller.ip, s.source_ip))
    && allHold(caller.claims, s.claims))
  if (applying.some((s) => s.effect === 'deny')) return 'deny'
  return applying.some((s) => s.effect === 'allow') ? 'allow' : 'implicit'
}

it('decides as SPEC "Decisions" says, for generated configs and callers', () => {
  fc.assert(fc.property(configArb, callerArb, (generated, c) => {
    const g = generated as Generated
    const loaded = loadConfigText(yamlOf(g), 'model.yaml', {})
    if (!loaded.config) throw new Error(loaded.diagnostics.map((d) => d.message).join('; '))
    const access = compileAccess(loaded.config)
    const claims: Record<string, unknown> = { ...c.claims, ...(c.org ? { org: c.org } : {}), iss: 'https://idp.example/', sub: c.sub }
    const identity: Identity = { issuerName: 'idp', iss: 'https://idp.example/', sub: c.sub, clientId: null, claims, expiresAt: 0 }
    const result = evaluateAccess(access, identity, { policy: access.policyFor(c.route) }, c.method, c.ip)
    const got = result.decision.reason === 'no_role' ? 'no_role' : result.decision.reason === 'explicit_deny' ? 'deny' : result.decision.reason === 'implicit_deny' ? 'implicit' : 'allow'
    expect(got, JSON.stringify({ yaml: yamlOf(g), caller: { ...c, claims } })).toBe(modelDecision(g, { ...c, claims }))
  }), { numRuns: 200 }) // each run loads a whole config (~20 ms): 600 took 12 s alone, and over 30 s on a loaded host
})
