import type { Readiness } from '../admin/index.ts'
import type { GatewayState } from '../gateway/index.ts'

/**
 * Ready once the config is loaded, every issuer's first key load has been tried, and the shared
 * stores have answered once: the Redis limits and session stores have connected, the PostgreSQL
 * API key store has been read and every PostgreSQL audit sink has taken records. An identity
 * provider that is down does not hold the whole gateway out of rotation (its tokens get 503
 * identity_provider_unavailable while its keys are retried), but it shows in the checks.
 *
 * The shared stores count only until they have answered once: a Redis or PostgreSQL outage later
 * affects every instance alike, and taking them all out of the load balancer would turn what
 * `on_error` and the audit spill handle into a full outage. It shows in the checks instead. The
 * stores themselves remember having answered, so a gateway never polled while they did reads the
 * same as one that was (a probe found the first not ready through an outage).
 */
/** How /readyz says a reload was refused and the config before it keeps serving (a worker's, or server.workers' primary's own). */
export function reloadRefusedCheck(refused: { at: string; problems: number }): string {
  return `a reload was refused at ${refused.at} (${refused.problems} ${refused.problems === 1 ? 'problem' : 'problems'}, logged with "config reload refused"): the running config keeps serving`
}

/** `auditSinks`: how many sinks the audit log was started with (a changed audit section waits for a restart). */
export function createReadiness(state: GatewayState, auditSinks: number): () => Readiness {
  return function readiness(): Readiness {
    const checks: Record<string, string> = { config: `generation ${state.runtime.generation}, sha256 ${state.runtime.configDigest}` }
    // Still ready (the running config serves), but not on the file the other instances may run.
    const refused = state.reloadRefused
    if (refused) checks.config += `; ${reloadRefusedCheck(refused)}`
    let ready = !state.draining
    if (state.draining) checks.draining = 'true'
    const store = state.runtime.limiter.store
    checks.limits_store = store.status()
    if (!store.answeredOnce()) ready = false
    // Every session request waits on it (a stopped Redis: each is 503), so it is named here too.
    // One store: the console's sessions live in sign_in's.
    const sessions = (state.runtime.signIn ?? state.runtime.consoleSignIn)?.store
    if (sessions !== undefined) {
      checks.session_store = sessions.status()
      if (!sessions.answeredOnce()) ready = false
    }
    // Every API key request reads it too (PostgreSQL: a wrong url, a server away at the start: each is 503).
    const apiKeys = state.runtime.apiKeys?.store
    if (apiKeys !== undefined) {
      checks.api_key_store = apiKeys.status()
      if (!apiKeys.answeredOnce()) ready = false
    }
    const audit = state.audit.stats()
    const sinks = Object.entries(audit.sinks)
    for (const [sink, up] of sinks) checks[`audit:${sink}`] = up ? 'writing' : 'spilling to disk'
    // Full under on_spill_full: refuse, every request is a 503 here: another instance may have room.
    if (audit.spillFull) checks.audit_spill = `full (audit.spill_max_bytes): ${state.audit.refusing ? 'refusing requests' : 'dropping records'}`
    if (state.audit.refusing) ready = false
    // The sinks the log was started with, not the running config's: a reload that added one (in
    // force at the next restart) held every instance reloaded from the file out of rotation.
    if (sinks.length < auditSinks || !sinks.every(([sink]) => !sink.startsWith('postgres') || audit.answered.includes(sink))) ready = false
    for (const keys of state.runtime.issuerKeys.values()) {
      if (!keys.attempted) ready = false
      checks[`issuer:${keys.name}`] = keys.state === 'ready' ? 'keys loaded' : keys.attempted ? `unavailable: ${keys.lastError}` : 'loading'
    }
    // Shown as an issuer's keys are, never holding the gateway back: an issuer that only introspects has none.
    const introspection = state.runtime.introspection
    if (introspection) checks[`introspection:${introspection.issuer.name}`] = introspection.status
    // A datasource that is down fails its datasets only (502 datasource_error): named, not blocking.
    for (const source of state.runtime.datasources.values()) checks[`datasource:${source.name}`] = source.status()
    return { ready, checks }
  }
}
