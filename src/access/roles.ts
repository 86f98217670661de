// Roles (SPEC "Decisions" step 3): a verified identity holds every role with a trust rule that
// matches it. A rule names an issuer, optionally a subject glob, and claim conditions.
import type { Glob, RoleConfig } from '../config/index.ts'
import type { Actor, Identity } from '../request/index.ts'
import { compileClaimConditions, describeClaimMismatch, failedClaim, letterCaseNote, type ClaimCondition } from './claims.ts'

export interface TrustRule {
  role: string
  index: number
  issuer: string
  subject: Glob | null
  claims: ClaimCondition[] | null
}

export interface CompiledRole {
  name: string
  description: string | undefined
  rules: TrustRule[]
  policies: readonly string[]
}

export function compileRoles(roles: readonly RoleConfig[]): CompiledRole[] {
  return roles.map((role) => ({
    name: role.name,
    description: role.description,
    policies: role.policies,
    rules: role.assumed_by.map((rule, index) => ({
      role: role.name,
      index,
      issuer: rule.issuer,
      subject: rule.subject ?? null,
      claims: compileClaimConditions(rule.claims),
    })),
  }))
}

/** Does a trust rule match an identity? What roles are resolved by: no words built for a rule that fails. */
function ruleMatches(rule: TrustRule, identity: Identity): boolean {
  return rule.issuer === identity.issuerName && (rule.subject === null || rule.subject.matches(identity.sub)) && failedClaim(rule.claims, identity.claims) === null
}

/** Why a trust rule does not match an identity, or null when it does (for explanations). */
export function ruleMismatch(rule: TrustRule, identity: Identity): string | null {
  if (rule.issuer !== identity.issuerName) return `issuer is ${identity.issuerName}, not ${rule.issuer}`
  if (rule.subject !== null && !rule.subject.matches(identity.sub)) {
    return `subject ${JSON.stringify(identity.sub)} does not match ${JSON.stringify(rule.subject.text)}${letterCaseNote([rule.subject], [identity.sub])}`
  }
  const failed = failedClaim(rule.claims, identity.claims)
  return failed === null ? null : describeClaimMismatch(failed, identity.claims)
}

export interface RoleResolver {
  /** Role names held by an identity, in file order; cached per verified identity. */
  rolesFor(identity: Identity): readonly string[]
  /** The roles of the agent acting for a user (an exchanged token's `act`), in file order. */
  actorRolesFor(actor: Actor): readonly string[]
}

/** The agent as trust rules read an identity: its issuer's name, sub, and the `act` claim's members as its claims. */
function actorIdentity(actor: Actor): Identity {
  return { issuerName: actor.issuerName, iss: actor.iss, sub: actor.sub, clientId: actor.clientId, claims: actor.claims, expiresAt: 0 }
}

/** Who may act for users, with which of their roles: token_exchange.actors. */
export interface Delegation {
  role: string
  delegated_roles: readonly string[]
}

/**
 * `delegations`: the running config's token_exchange.actors. A token the gateway issued holds the
 * roles its exchange granted, as long as this config would still grant them: the user's trust rules
 * (on the user's claims, which the token carries) and, for an agent acting, the agent's own trust
 * rules and its delegation. Held as granted, a reload that took an agent's role, its actors entry or
 * a delegated role away, or a user's role, left the tokens exchanged before allowed for their whole
 * lifetime (found by the access probe), where the agent's and the user's own tokens lost it at once.
 */
export function createRoleResolver(roles: readonly CompiledRole[], delegations: readonly Delegation[] = []): RoleResolver {
  // Identities are shared by the token cache, so a cached token also skips role resolution.
  const held = new WeakMap<Identity | Actor, readonly string[]>()
  const byRules = (identity: Identity) => roles.filter((role) => role.rules.some((rule) => ruleMatches(rule, identity))).map((role) => role.name)
  /** The roles a token the gateway issued names, that this config has and still grants: `now`. */
  const named = (names: readonly string[], now: readonly string[]) => Object.freeze(roles.filter((role) => names.includes(role.name) && now.includes(role.name)).map((role) => role.name))
  /** The user roles an agent holding `agentRoles` may act with; `*`: any. */
  const delegable = (agentRoles: readonly string[]) => delegations.filter((entry) => agentRoles.includes(entry.role)).flatMap((entry) => entry.delegated_roles)
  const resolver: RoleResolver = {
    rolesFor(identity) {
      let names = held.get(identity)
      if (names === undefined) {
        const granted = identity.grantedRoles
        if (granted === undefined) names = Object.freeze(byRules(identity))
        // Roles given to explain (a recorded request's, whose claims the record does not keep) are held as given.
        else if (identity.idp === undefined) names = named(granted, granted)
        else {
          let now = byRules(identity)
          if (identity.actor) {
            const may = delegable(resolver.actorRolesFor(identity.actor))
            if (!may.includes('*')) now = now.filter((role) => may.includes(role))
          }
          names = named(granted, now)
        }
        held.set(identity, names)
      }
      return names
    },
    actorRolesFor(actor) {
      let names = held.get(actor)
      if (names === undefined) {
        const now = byRules(actorIdentity(actor))
        names = actor.roles !== null ? named(actor.roles, now) : Object.freeze(now)
        held.set(actor, names)
      }
      return names
    },
  }
  return resolver
}
