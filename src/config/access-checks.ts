// Warnings about roles and policies: legal, but almost certainly not what was meant.
import type { ConfigPath, Finding } from './diagnostics.ts'
import { jwtIssuers, statementActions, type Config, type StatementConfig } from './schema.ts'
import { routesSelectedBy } from './values.ts'

const MAX_OVERLAP_WARNINGS = 20

export function accessFindings(config: Config): Finding[] {
  return [...unreachableRoles(config), ...duplicateSids(config), ...overlappingStatements(config)]
}

/**
 * A statement is named by its sid (POLICY#INDEX without one) in the audit record, the 403's detail,
 * explain and the console's trace, which compares a record's sid with the running config's: two
 * statements of one name (a sid repeated, or one spelled as another's POLICY#INDEX) leave a record
 * that does not say which decided (found by the access probe).
 */
function duplicateSids(config: Config): Finding[] {
  const owner = new Map<string, string>()
  const findings: Finding[] = []
  config.policies.forEach((policy, i) => {
    policy.statements.forEach((statement, j) => {
      const sid = statement.sid ?? `${policy.name}#${j}`
      const earlier = owner.get(sid)
      if (earlier === undefined) {
        owner.set(sid, policy.name)
        return
      }
      findings.push({
        severity: 'warning',
        path: ['policies', i, 'statements', j, ...(statement.sid === undefined ? [] : ['sid'])],
        message: `sid "${sid}" names a statement of policy "${earlier}" already: the audit record, the 403's detail and explain name a statement by its sid, so they would not say which of the two decided; give each its own`,
      })
    })
  })
  return findings
}

/** A role whose every trust rule contradicts itself can never be granted. */
function unreachableRoles(config: Config): Finding[] {
  const findings: Finding[] = []
  config.roles.forEach((role, i) => {
    const reasons = role.assumed_by.map((rule) => {
      const issuerUrl = jwtIssuers(config).find((issuer) => issuer.name === rule.issuer)?.issuer
      const subClaim = rule.claims?.sub
      const iss = rule.claims?.iss
      const literals = (value: typeof subClaim) => (value === undefined ? null : (Array.isArray(value) ? value : [value]).every((g) => g.literal) ? (Array.isArray(value) ? value : [value]).map((g) => g.text) : null)
      const subs = literals(subClaim)
      if (rule.subject?.literal && subs && !subs.includes(rule.subject.text)) return `subject "${rule.subject.text}" contradicts claims.sub`
      const issValues = literals(iss)
      if (issValues && issuerUrl !== undefined && !issValues.includes(issuerUrl)) return `claims.iss can never equal issuer ${rule.issuer}'s "${issuerUrl}"`
      return null
    })
    if (reasons.every((reason) => reason !== null)) {
      findings.push({ severity: 'warning', path: ['roles', i, 'assumed_by'], message: `role "${role.name}" can never be granted: ${reasons.join('; ')}` })
    }
  })
  return findings
}

interface Located {
  statement: StatementConfig
  sid: string
  path: ConfigPath
}

/**
 * Allow/deny pairs in the policies of one role that cover the same route and method: the deny
 * always wins there (unless their conditions never hold together), so the allow is partly dead.
 * An allow on "*" with a deny that lists methods, on a route that takes any method, is a deny-list:
 * the methods it does not name (PROPFIND, PURGE, a verb only the upstream knows) are allowed, which
 * a probe found was rarely meant; the warning says so.
 */
function overlappingStatements(config: Config): Finding[] {
  const routeIds = config.routes.map((r) => r.id)
  const known = new Set(routeIds)
  const anyMethod = new Set(config.routes.filter((r) => r.methods.includes('*')).map((r) => r.id))
  const byPolicy = new Map<string, Array<Located & { routes: Set<string> }>>()
  config.policies.forEach((policy, i) => {
    byPolicy.set(policy.name, policy.statements.map((statement, j) => ({
      statement,
      sid: statement.sid ?? `${policy.name}#${j}`,
      path: ['policies', i, 'statements', j],
      routes: new Set(routesSelectedBy(statement.routes, routeIds, known)),
    })))
  })
  // Only statements that share a route can overlap: bucket them per route and role first, so the
  // cost follows the statements per route, not the square of all statements.
  const buckets = new Map<string, { allow: Located[]; deny: Located[] }>()
  for (const role of config.roles) {
    for (const located of role.policies.flatMap((name) => byPolicy.get(name) ?? [])) {
      for (const routeId of located.routes) {
        const key = `${routeId}\n${role.name}`
        let bucket = buckets.get(key)
        if (!bucket) buckets.set(key, (bucket = { allow: [], deny: [] }))
        bucket[located.statement.effect].push(located)
      }
    }
  }
  const pairs = new Map<string, { allow: Located; deny: Located; routes: Set<string>; methods: Set<string>; denyList: boolean }>()
  for (const [key, bucket] of buckets) {
    const routeId = key.slice(0, key.indexOf('\n'))
    for (const allow of bucket.allow) {
      for (const deny of bucket.deny) {
        const methods = sharedActions(statementActions(allow.statement), statementActions(deny.statement))
        if (methods.length === 0) continue
        const pairKey = `${allow.sid}\n${deny.sid}`
        const pair = pairs.get(pairKey) ?? { allow, deny, routes: new Set(), methods: new Set(), denyList: false }
        pair.routes.add(routeId)
        if (allow.statement.actions.includes('*') && !deny.statement.actions.includes('*') && anyMethod.has(routeId)) pair.denyList = true
        for (const m of methods) pair.methods.add(m)
        pairs.set(pairKey, pair)
      }
    }
  }
  const findings: Finding[] = []
  for (const pair of [...pairs.values()].slice(0, MAX_OVERLAP_WARNINGS)) {
    const routes = [...pair.routes]
    const shown = routes.slice(0, 3).join(', ') + (routes.length > 3 ? ` and ${routes.length - 3} more` : '')
    findings.push({
      severity: 'warning',
      path: pair.allow.path,
      message: `allow "${pair.allow.sid}" overlaps deny "${pair.deny.sid}" for ${[...pair.methods].join(', ')} on ${shown}: the deny wins there (unless their conditions never hold together)${pair.denyList ? `; every other method (PROPFIND, PURGE, any the upstream takes) is still allowed by the "*": to allow only some, name them in the allow instead` : ''}`,
    })
  }
  if (pairs.size > MAX_OVERLAP_WARNINGS) {
    findings.push({ severity: 'warning', path: ['policies'], message: `${pairs.size - MAX_OVERLAP_WARNINGS} more overlapping allow/deny pairs not shown` })
  }
  return findings
}

function sharedActions(a: readonly string[], b: readonly string[]): string[] {
  if (a.includes('*')) return b.includes('*') ? ['*'] : [...b]
  if (b.includes('*')) return [...a]
  return a.filter((m) => b.includes(m))
}
