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

export function createRoleResolver(roles: readonly CompiledRole[]): RoleResolver {
  // Identities are shared by the token cache, so a cached token also skips role resolution.
  const held = new WeakMap<Identity | Actor, readonly string[]>()
  /** The roles a token the gateway issued names, that this config still has. */
  const named = (names: readonly string[]) => Object.freeze(roles.filter((role) => names.includes(role.name)).map((role) => role.name))
  return {
    rolesFor(identity) {
      let names = held.get(identity)
      if (names === undefined) {
        // A token the gateway issued holds the roles its exchange granted: those, not trust rules.
        names = identity.grantedRoles !== undefined
          ? named(identity.grantedRoles)
          : Object.freeze(roles.filter((role) => role.rules.some((rule) => ruleMatches(rule, identity))).map((role) => role.name))
        held.set(identity, names)
      }
      return names
    },
    actorRolesFor(actor) {
      let names = held.get(actor)
      if (names === undefined) {
        const acting = actor.roles
        names = acting !== null ? named(acting) : Object.freeze(roles.filter((role) => role.rules.some((rule) => ruleMatches(rule, actorIdentity(actor)))).map((role) => role.name))
        held.set(actor, names)
      }
      return names
    },
  }
}
