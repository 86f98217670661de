// Policies (SPEC "Decisions" step 4), compiled at config load into an index: for each route, for
// each role, the deny and allow statements that can apply there, in file order. A decision then
// looks only at the statements of its route and of the roles held, so its cost does not grow with
// the number of statements in the file.
import { addressSet, routesSelectedBy, statementActions, type AddressSet, type Glob, type PolicyConfig } from '../config/index.ts'
import { compileClaimConditions, failedClaim, type ClaimCondition } from './claims.ts'
import type { CompiledRole } from './roles.ts'

export interface CompiledStatement {
  sid: string
  policy: string
  effect: 'allow' | 'deny'
  /** Position across all policies, for explanations in file order. */
  order: number
  anyAction: boolean
  actions: ReadonlySet<string>
  routes: readonly Glob[]
  sourceIp: AddressSet | null
  sourceIpText: readonly string[]
  claims: ClaimCondition[] | null
}

export interface RoleStatements {
  deny: CompiledStatement[]
  allow: CompiledStatement[]
}

/** Role name → the statements of its policies that apply to one route. */
export type RoutePolicy = ReadonlyMap<string, RoleStatements>

export function compileStatements(policies: readonly PolicyConfig[]): Map<string, CompiledStatement[]> {
  const byPolicy = new Map<string, CompiledStatement[]>()
  let order = 0
  for (const policy of policies) {
    byPolicy.set(policy.name, policy.statements.map((statement, i): CompiledStatement => ({
      sid: statement.sid ?? `${policy.name}#${i}`,
      policy: policy.name,
      effect: statement.effect,
      order: order++,
      anyAction: statement.actions.includes('*'),
      actions: new Set(statementActions(statement)),
      routes: statement.routes,
      sourceIp: statement.conditions?.source_ip ? addressSet(statement.conditions.source_ip) : null,
      sourceIpText: statement.conditions?.source_ip?.map((c) => c.text) ?? [],
      claims: compileClaimConditions(statement.conditions?.claims),
    })))
  }
  return byPolicy
}

export function indexByRoute(
  routeIds: readonly string[],
  roles: readonly CompiledRole[],
  statements: ReadonlyMap<string, CompiledStatement[]>,
): Map<string, RoutePolicy> {
  const known = new Set(routeIds)
  const rolesByPolicy = new Map<string, string[]>()
  for (const role of roles) {
    for (const policy of role.policies) rolesByPolicy.set(policy, [...(rolesByPolicy.get(policy) ?? []), role.name])
  }
  const index = new Map<string, Map<string, RoleStatements>>()
  const ordered = [...statements.values()].flat().sort((a, b) => a.order - b.order)
  for (const statement of ordered) {
    const holders = rolesByPolicy.get(statement.policy)
    if (!holders) continue
    for (const routeId of routesSelectedBy(statement.routes, routeIds, known)) {
      let byRole = index.get(routeId)
      if (!byRole) index.set(routeId, (byRole = new Map()))
      for (const role of holders) {
        let bucket = byRole.get(role)
        if (!bucket) byRole.set(role, (bucket = { deny: [], allow: [] }))
        bucket[statement.effect].push(statement)
      }
    }
  }
  return index
}

export type Mismatch = null | 'action' | 'source_ip' | ClaimCondition

/** Why a statement does not apply to a request on its route, or null when it does (no allocation). */
export function statementMismatch(statement: CompiledStatement, method: string, clientIp: string, claims: Readonly<Record<string, unknown>>): Mismatch {
  if (!statement.anyAction && !statement.actions.has(method)) return 'action'
  if (statement.sourceIp !== null && !statement.sourceIp.contains(clientIp)) return 'source_ip'
  return failedClaim(statement.claims, claims, statement.effect === 'deny')
}
