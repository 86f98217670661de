// Access decision cost (in process): 10 statements vs 10,000 statements over 5,000 routes, with an
// identity holding 3 roles. The policy index is per route, so the cost should not grow with the
// file. Run by bench/run.ts.
import { stringify } from 'yaml'
import { compileAccess, evaluateAccess } from '../src/access/index.ts'
import { jwtIssuers, loadConfigText } from '../src/config/index.ts'
import { identityFromClaims } from '../src/identity/index.ts'

export interface AccessRow {
  statements: number
  routes: number
  compileMs: number
  decisionNs: number
}

function configWith(routes: number, statements: number): string {
  const routeIds = Array.from({ length: routes }, (_, i) => `svc${i % 100}.r${i}`)
  const wildcards = Math.min(10, Math.floor(statements / 10))
  const perRoute = statements - wildcards
  const policies = [0, 1, 2].map((p) => ({
    name: `policy-${p}`,
    statements: [] as Array<Record<string, unknown>>,
  }))
  for (let s = 0; s < perRoute; s++) {
    const route = routeIds[s % routes] as string
    const effect = s % 5 === 4 ? 'deny' : 'allow'
    policies[s % 3]?.statements.push({ sid: `S${s}`, effect, actions: effect === 'deny' ? ['DELETE'] : ['GET', 'HEAD'], routes: [route] })
  }
  for (let w = 0; w < wildcards; w++) {
    policies[w % 3]?.statements.push({ sid: `W${w}`, effect: 'allow', actions: ['GET'], routes: [`svc${w}.*`], conditions: { claims: { tenant: 'acme' } } })
  }
  return stringify({
    issuers: [{ name: 'corp', issuer: 'https://corp.example/', audiences: ['api'] }],
    roles: [0, 1, 2].map((p) => ({ name: `role-${p}`, assumed_by: [{ issuer: 'corp', subject: 'svc-*' }], policies: [`policy-${p}`] })),
    policies,
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: routeIds.map((id, i) => ({ id, methods: ['GET', 'HEAD', 'DELETE'], path: `/${id.replace('.', '/')}/${i}`, upstream: 'api' })),
  })
}

/** `quick`: a tenth of the decisions (the suite's smoke run checks it works, and measures nothing). */
export function benchAccess(quick = false): AccessRow[] {
  const rows: AccessRow[] = []
  for (const [routes, statements] of [[5, 10], [5_000, 10_000]] as const) {
    const loaded = loadConfigText(configWith(routes, statements), 'bench.yaml')
    if (!loaded.config) throw new Error(JSON.stringify(loaded.diagnostics.slice(0, 3)))
    const started = performance.now()
    const access = compileAccess(loaded.config)
    const compileMs = performance.now() - started
    const issuer = jwtIssuers(loaded.config)[0]!
    const identity = identityFromClaims(issuer, { iss: issuer.issuer, sub: 'svc-looker', tenant: 'acme' })
    // The same route in both files: the first one (svc0.r0), which the wildcards also cover.
    const route = { policy: access.policyFor('svc0.r0') }
    let allowed = 0
    const run = (n: number) => {
      for (let i = 0; i < n; i++) if (evaluateAccess(access, identity, route, 'GET', '10.0.0.1').decision.effect === 'allow') allowed++
    }
    const n = quick ? 200_000 : 2_000_000
    run(n / 10)
    const t = performance.now()
    run(n)
    const decisionNs = ((performance.now() - t) * 1e6) / n
    if (allowed === 0) throw new Error('the benchmark decision never allowed: the config is wrong')
    rows.push({ statements, routes, compileMs, decisionNs })
  }
  return rows
}
