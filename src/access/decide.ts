// The access decision, pure: an identity's roles, its route's policy index, the method and the
// client address in; allow or deny out, with the statement that decided. An explicit deny in any
// role held wins; otherwise the first matching allow; otherwise an implicit deny.
import type { Identity } from '../request/index.ts'
import { statementMismatch, type CompiledStatement, type RoutePolicy } from './policies.ts'

export type AccessDecision =
  | { effect: 'allow'; reason: 'allowed'; statement: CompiledStatement }
  | { effect: 'deny'; reason: 'explicit_deny'; statement: CompiledStatement }
  | { effect: 'deny'; reason: 'implicit_deny' | 'no_role'; statement: null }

export interface DecisionInput {
  /** Whose claims statement conditions read: the caller's, or the acting agent's (`act`). */
  identity: Pick<Identity, 'claims'>
  roles: readonly string[]
  /** The route's statements per role; undefined when no policy mentions the route. */
  policy: RoutePolicy | undefined
  method: string
  clientIp: string
}

const NO_ROLE: AccessDecision = Object.freeze({ effect: 'deny', reason: 'no_role', statement: null })
const IMPLICIT_DENY: AccessDecision = Object.freeze({ effect: 'deny', reason: 'implicit_deny', statement: null })

export function decide({ identity, roles, policy, method, clientIp }: DecisionInput): AccessDecision {
  if (roles.length === 0) return NO_ROLE
  if (policy === undefined) return IMPLICIT_DENY
  const claims = identity.claims
  for (const role of roles) {
    const bucket = policy.get(role)
    if (!bucket) continue
    for (const statement of bucket.deny) {
      if (statementMismatch(statement, method, clientIp, claims) === null) return { effect: 'deny', reason: 'explicit_deny', statement }
    }
  }
  let allowed: CompiledStatement | null = null
  for (const role of roles) {
    const bucket = policy.get(role)
    if (!bucket) continue
    for (const statement of bucket.allow) {
      if (allowed !== null && statement.order > allowed.order) break
      if (statementMismatch(statement, method, clientIp, claims) === null) {
        allowed = statement
        break
      }
    }
  }
  return allowed === null ? IMPLICIT_DENY : { effect: 'allow', reason: 'allowed', statement: allowed }
}
