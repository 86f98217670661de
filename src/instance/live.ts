import type { AdminAuth } from '../admin/index.ts'
import type { GatewayState } from '../gateway/index.ts'
import type { SecretsRuntime } from '../secrets/index.ts'

/**
 * What a reload replaces in a running gateway: the state the pipeline reads (the runtime and the
 * assertion signer), the secrets in use and the admin credential.
 */
export interface Live {
  readonly state: GatewayState
  secrets: SecretsRuntime
  admin: AdminAuth
}
