import type { AdminAuth } from '../admin/index.ts'
import type { GatewayState, Runtime } from '../gateway/index.ts'
import type { SecretsRuntime } from '../secrets/index.ts'
import type { AssertionSigner } from '../upstream/index.ts'

/**
 * What a reload replaces in a running gateway: the state the pipeline reads (the runtime, with its
 * signers), the secrets in use and the admin credential.
 */
export interface Live {
  readonly state: GatewayState
  secrets: SecretsRuntime
  admin: AdminAuth
  /**
   * Runtimes a reload replaced whose requests may still be running, each with the time
   * (performance.now(): a wall clock stepped back kept them the size of the step) after which
   * its requests no longer hold anything open (reload.ts retireUnused; the JWKS endpoint publishes
   * their signers' keys meanwhile).
   */
  readonly replaced: Map<Runtime, number>
  /**
   * The assertion signers of runtimes retired since, each with the time its last assertion expires
   * (its config's assertion ttl after it retired): the JWKS endpoint publishes their keys until
   * then, so an upstream that checks an assertion late still finds its key.
   */
  readonly retiredSigners: Map<AssertionSigner, number>
}

/** The assertion signers whose keys the JWKS endpoint publishes now: the current runtime's, the replaced ones', the recently retired ones'. */
export function signersToPublish(live: Live, now = Date.now()): Array<AssertionSigner | null> {
  const retired = [...live.retiredSigners].flatMap(([signer, until]) => (until > now ? [signer] : []))
  return [live.state.runtime, ...live.replaced.keys()].map((runtime) => runtime.signing.assertions).concat(retired)
}

/**
 * Adds the signer of a runtime that has retired, published until `until`, and forgets those past
 * their deadline: here, where they are added, so that a gateway whose JWKS nobody fetches keeps
 * only the last ttl's worth however many reloads it takes.
 */
export function retireSigner(live: Live, signer: AssertionSigner | null, until: number, now = Date.now()): void {
  for (const [kept, deadline] of live.retiredSigners) if (deadline <= now) live.retiredSigners.delete(kept)
  if (signer) live.retiredSigners.set(signer, until)
}
