// What the gateway owns in a target's answer (an upstream's or a function's), decided in one place
// for both: on a route with `cors` the target's Access-Control-* are dropped (the gateway's, set on
// the response already, stay) and its Vary keeps Origin, or a shared cache would hand one origin's
// answer to another; a Set-Cookie naming one of the gateway's own cookies (the sign-in session's)
// is dropped, so no target can replace or end a person's gateway session.
import { varyWithOrigin } from './cors.ts'
import { withoutSetCookies } from './cookies.ts'

export interface AnswerPolicy {
  /** The gateway answers CORS for this route (routes[].cors). */
  ownsCors: boolean
  /** The gateway's own cookies: never set by a target. */
  withheldCookies: ReadonlySet<string>
}

/** Does the policy change anything at all (so a route without `cors` or sign-in skips the walk)? */
export function answerPolicyApplies(policy: AnswerPolicy): boolean {
  return policy.ownsCors || policy.withheldCookies.size > 0
}

/** A target's answer field (lower-case name) as the gateway passes it on; undefined when it is dropped. */
export function passedOn(name: string, value: string | readonly string[], policy: AnswerPolicy): string | string[] | undefined {
  if (policy.ownsCors) {
    if (name.startsWith('access-control-')) return undefined
    if (name === 'vary') return varyWithOrigin(value as string | string[])
  }
  if (name === 'set-cookie' && policy.withheldCookies.size > 0) {
    const kept = withoutSetCookies(value, policy.withheldCookies)
    return kept.length > 0 ? kept : undefined
  }
  return value as string | string[]
}
