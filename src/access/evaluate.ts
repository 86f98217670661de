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
  return { roles, statements, resolver: createRoleResolver(roles, config.token_exchange?.actors), policyFor: (routeId) => index.get(routeId) }
}

export interface AccessResult {
  roles: readonly string[]
  decision: AccessDecision
  /**
   * On behalf of (an identity with an actor): the agent's roles, and whose decision denied — the
   * user's (`subject`) or the agent's (`actor`). Absent for a caller acting for itself.
   */
  actorRoles?: readonly string[]
  deniedBy?: 'subject' | 'actor' | null
}

/**
 * SPEC steps 3–4 for one request: the roles held and the decision. On behalf of a user (SPEC
 * "Agents"), the agent's roles decide too: allowed only where both the user's and the agent's
 * roles allow, a deny on either wins.
 */
export function evaluateAccess(access: AccessControl, identity: Identity, route: { policy: RoutePolicy | undefined }, method: string, clientIp: string): AccessResult {
  const roles = access.resolver.rolesFor(identity)
  const decision = decide({ identity, roles, policy: route.policy, method, clientIp })
  const actor = identity.actor
  if (!actor) return { roles, decision }
  const actorRoles = access.resolver.actorRolesFor(actor)
  if (decision.effect !== 'allow') return { roles, decision, actorRoles, deniedBy: 'subject' }
  const actorDecision = decide({ identity: actor, roles: actorRoles, policy: route.policy, method, clientIp })
  if (actorDecision.effect !== 'allow') return { roles, decision: actorDecision, actorRoles, deniedBy: 'actor' }
  return { roles, decision, actorRoles, deniedBy: null }
}

/** The 403 for a denial, naming what decided it, and on behalf of a user, whose roles denied. */
export function accessDenied(result: AccessResult, identity: Identity, routeId: string, method: string): GatewayError {
  const actor = identity.actor
  if (!actor || !result.deniedBy) return denial(result.decision, result.roles, identity, routeId, method)
  const { decision } = result
  const roles = result.deniedBy === 'actor' ? (result.actorRoles ?? []) : result.roles
  const who = result.deniedBy === 'actor'
    ? `Agent "${truncateClientValue(actor.sub)}" acting for "${truncateClientValue(identity.sub)}" is denied by the agent's roles`
    : `"${truncateClientValue(identity.sub)}", for whom agent "${truncateClientValue(actor.sub)}" acts, is denied by the user's roles`
  if (decision.reason === 'no_role') {
    const none = result.deniedBy === 'subject' && identity.grantedRoles !== undefined && identity.idp !== undefined ? noGrantedRole(identity.grantedRoles) : `${result.deniedBy === 'actor' ? 'the agent' : 'the user'} holds no role.`
    return new GatewayError('no_role', { detail: `${who}: ${none}` })
  }
  return new GatewayError('policy_denied', { detail: `${who}: ${denial(decision, roles, identity, routeId, method).detail}` })
}

/**
 * An exchanged token (a token the gateway issued: its `idp`) whose granted roles this config gives no
 * longer (access/roles.ts): not a trust rule of its own that failed. Roles given to explain are not that.
 */
function noGrantedRole(granted: readonly string[]): string {
  return `none of the roles the token exchange granted (${granted.join(', ')}) is still given by the config: the user's trust rules, or the agent's roles and token_exchange.actors, no longer grant them.`
}

function denial(decision: AccessDecision, roles: readonly string[], identity: Identity, routeId: string, method: string): GatewayError {
  switch (decision.reason) {
    case 'no_role':
      if (identity.grantedRoles !== undefined && identity.idp !== undefined) return new GatewayError('no_role', { detail: `"${truncateClientValue(identity.sub)}": ${noGrantedRole(identity.grantedRoles)}` })
      return new GatewayError('no_role', { detail: `No role's trust rule matches issuer "${identity.issuerName}", subject "${truncateClientValue(identity.sub)}".` })
    case 'explicit_deny':
      return new GatewayError('policy_denied', {
        detail: `Statement "${decision.statement.sid}" of policy "${decision.statement.policy}" denies ${method} on route "${routeId}".`,
      })
    default:
      return new GatewayError('policy_denied', { detail: `No statement allows ${method} on route "${routeId}" for role${roles.length === 1 ? '' : 's'} ${roles.join(', ')}.` })
  }
}
