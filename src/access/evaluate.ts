// Access control for one request: the roles held, the decision, and the one place a decision
// becomes a 403. Compiled once per config: roles, statements and the per-route policy index.
import type { Config } from '../config/index.ts'
import { GatewayError, truncateClientValue } from '../errors/index.ts'
import type { Identity } from '../request/index.ts'
import { decide, type AccessDecision } from './decide.ts'
import { compileStatements, indexByRoute, type CompiledStatement, type RoutePolicy } from './policies.ts'
import { compileRoles, createRoleResolver, type CompiledRole, type RoleResolver } from './roles.ts'

export interface AccessControl {
  readonly roles: readonly CompiledRole[]
  readonly statements: ReadonlyMap<string, CompiledStatement[]>
  readonly resolver: RoleResolver
  policyFor(routeId: string): RoutePolicy | undefined
}

export function compileAccess(config: Config): AccessControl {
  const roles = compileRoles(config.roles)
  const statements = compileStatements(config.policies)
  const index = indexByRoute(config.routes.map((r) => r.id), roles, statements)
  return { roles, statements, resolver: createRoleResolver(roles), policyFor: (routeId) => index.get(routeId) }
}

export interface AccessResult {
  roles: readonly string[]
  decision: AccessDecision
}

/** SPEC steps 3–4 for one request: the roles held and the decision. */
export function evaluateAccess(access: AccessControl, identity: Identity, route: { policy: RoutePolicy | undefined }, method: string, clientIp: string): AccessResult {
  const roles = access.resolver.rolesFor(identity)
  return { roles, decision: decide({ identity, roles, policy: route.policy, method, clientIp }) }
}

/** The 403 for a denial, naming what decided it. */
export function accessDenied({ roles, decision }: AccessResult, identity: Identity, routeId: string, method: string): GatewayError {
  switch (decision.reason) {
    case 'no_role':
      return new GatewayError('no_role', { detail: `No role's trust rule matches issuer "${identity.issuerName}", subject "${truncateClientValue(identity.sub)}".` })
    case 'explicit_deny':
      return new GatewayError('policy_denied', {
        detail: `Statement "${decision.statement.sid}" of policy "${decision.statement.policy}" denies ${method} on route "${routeId}".`,
      })
    default:
      return new GatewayError('policy_denied', { detail: `No statement allows ${method} on route "${routeId}" for role${roles.length === 1 ? '' : 's'} ${roles.join(', ')}.` })
  }
}
