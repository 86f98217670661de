import type { AdminAuth } from '../admin/index.ts'
import type { GatewayState, Runtime } from '../gateway/index.ts'
import type { SecretsRuntime } from '../secrets/index.ts'

/**
 * What a reload replaces in a running gateway: the state the pipeline reads (the runtime, with its
 * signers), the secrets in use and the admin credential.
 */
export interface Live {
  readonly state: GatewayState
  secrets: SecretsRuntime
  admin: AdminAuth
  /**
   * Runtimes a reload replaced whose requests may still be running, each with the time after which
   * its requests no longer hold anything open (reload.ts retireUnused; the JWKS endpoint publishes
   * their signers' keys meanwhile).
   */
  readonly replaced: Map<Runtime, number>
}
