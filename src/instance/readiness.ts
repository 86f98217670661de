import type { Readiness } from '../admin/index.ts'
import type { GatewayState } from '../gateway/index.ts'

/**
 * Ready once the config is loaded and every issuer's first key load has been tried: an identity
 * provider that is down does not hold the whole gateway out of rotation (its tokens get 503
 * identity_provider_unavailable while its keys are retried), but it shows in the checks.
 */
export function readiness(state: GatewayState): Readiness {
  const checks: Record<string, string> = { config: `generation ${state.runtime.generation}` }
  let ready = !state.draining
  if (state.draining) checks.draining = 'true'
  checks.limits_store = state.runtime.limiter.store.status()
  for (const [sink, up] of Object.entries(state.audit.stats().sinks)) checks[`audit:${sink}`] = up ? 'writing' : 'spilling to disk'
  for (const keys of state.runtime.issuerKeys.values()) {
    if (!keys.attempted) ready = false
    checks[`issuer:${keys.name}`] = keys.state === 'ready' ? 'keys loaded' : keys.attempted ? `unavailable: ${keys.lastError}` : 'loading'
  }
  // A datasource that is down fails its datasets only (502 datasource_error): named, not blocking.
  for (const source of state.runtime.datasources.values()) checks[`datasource:${source.name}`] = source.status()
  return { ready, checks }
}
