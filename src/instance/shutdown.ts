// SIGTERM: stop accepting, let requests in flight finish, then close listeners, pools, key sets,
// stores, the audit log (last: every record is queued by then). The waits share one deadline,
// server.shutdown_timeout from the signal: the hard stops past it (an uncaught exception's, a
// server.workers thread's) are counted from there too.
//
// Each close step after the drain is bounded, and a step that does not end is left behind (the
// process exits anyway): a dependency that accepts and never answers (an OTLP collector, a frozen
// PostgreSQL under a dataset's pool) held the exit for the dependency's own timeout, or for ever,
// and the audit log, closed after the registries, was never closed: the last requests' records were
// lost (found by an adversarial probe). The audit log's close is always reached, with time of its own.
// Requests still running then (a wait neither the cut nor the closes end) are waited for within
// the registries' window; those left are logged as records that will not be written.
import type { Server } from 'node:http'
import { adminChangesRecorded } from '../admin/index.ts'
import { DeadlineExceeded, withinDeadline } from '../collections/index.ts'
import type { GatewayServer } from '../gateway/index.ts'
import { setTimeout as sleep } from 'node:timers/promises'
import type { AuditLog } from '../audit/index.ts'
import type { Logger, Tracing } from '../telemetry/index.ts'
import type { Live } from './live.ts'
import type { SecretsRefresh } from './secrets-refresh.ts'

export interface ShutdownDeps {
  gatewayServer: GatewayServer
  adminServer: Server
  refresh: Pick<SecretsRefresh, 'stop'>
  closeRegistries(): Promise<void>
  /** Ends the MCP sessions' notification streams, leaving their calls in flight to finish (agents registry). */
  quiesceMcpSessions(): void
  audit: AuditLog
  tracing: Tracing | null
}

/**
 * What the registries, and the tracing's last export, may take at least, however late the drain
 * ended: a function's pool, closed here, stops the invocations still running, whose requests are
 * then recorded as cut (the audit log closes after).
 */
export const CLOSE_STEP_MIN_MS = 2_000
/**
 * How long past server.shutdown_timeout the audit log may take to close (its sinks' last writes,
 * spilled at their write_timeout): within the 5 s past it at which a server.workers thread, or a
 * drain after an uncaught exception, is stopped hard.
 */
const AUDIT_CLOSE_MARGIN_MS = 4_000
/** What the audit log's close may take at least, however late the steps before it ended. */
const AUDIT_CLOSE_MIN_MS = 1_000

/** The step, or an error logged once `ms` have passed without its end (it is left running: the process exits); its failure a warning. */
export async function bounded(logger: Logger, what: string, ms: number, step: () => Promise<unknown> | undefined, fields: () => object = () => ({})): Promise<void> {
  try {
    await withinDeadline(Promise.resolve(step()), ms, what, () => {})
  } catch (err) {
    if (err instanceof DeadlineExceeded) logger.error({ timeout_ms: Math.round(ms), ...fields() }, `shutdown: ${what} did not end within ${Math.round(ms)} ms: the process ends without waiting for it`)
    else logger.warn({ err }, `shutdown: ${what} failed`)
  }
}

export function createShutdown(live: Live, deps: ShutdownDeps): () => Promise<void> {
  const { state } = live
  return async function shutdown(): Promise<void> {
    if (state.draining) return
    state.draining = true
    // On the monotonic clock: a wall clock stepped back an hour mid-drain held the drain an hour,
    // until a supervisor's SIGKILL lost the audit log's last records.
    const deadline = performance.now() + state.runtime.config.server.shutdown_timeout
    deps.refresh.stop()
    deps.gatewayServer.close()
    deps.gatewayServer.closeIdleConnections()
    // MCP sessions' notification streams never end on their own: end them, not wait them out. Their
    // tool calls in flight are requests like any other: drained, then the sessions close with the registries.
    deps.quiesceMcpSessions()
    // Open WebSocket tunnels are sent 1001 (going away) now, for their clients to reconnect to another
    // instance: held to the deadline, they were cut then without a word, and held the drain until it.
    state.openTunnels.goingAway()
    while (state.inFlight > 0 && performance.now() < deadline) await sleep(20)
    if (state.inFlight > 0) {
      state.logger.warn({ in_flight: state.inFlight }, 'shutdown timeout: closing connections with requests in flight')
      state.cutAtShutdown = true
    }
    deps.gatewayServer.closeAllConnections()
    for (const socket of state.tunnels) socket.destroy()
    deps.adminServer.close()
    deps.adminServer.closeAllConnections()
    // A revocation made is recorded before the process ends (its answer may be cut above; its
    // record is not), within what the requests left of the deadline: waited for afresh, a record
    // held by the audit log's lock took the drain to twice shutdown_timeout.
    await adminChangesRecorded(state.logger, deadline - performance.now())
    const logger = state.logger
    const closeBy = performance.now() + Math.max(deadline - performance.now(), CLOSE_STEP_MIN_MS)
    await bounded(logger, 'closing the pools, key sets and stores', closeBy - performance.now(), () => deps.closeRegistries())
    // A request whose wait the cut and the closes do not end (an introspection endpoint that does
    // not answer, waited on for introspection.timeout) is recorded only when it ends: waited for
    // within the same window, then said, since the audit log closes next and its record is lost
    // (found by an adversarial probe: it was lost without a word).
    while (state.inFlight > 0 && performance.now() < closeBy) await sleep(20)
    if (state.inFlight > 0) {
      const n = state.inFlight
      logger.error({ in_flight: n, records_not_written: n }, `shutdown: ${n} request${n === 1 ? ' is' : 's are'} still running: ${n === 1 ? 'its audit record' : 'their audit records'} will not be written`)
    }
    // Last: every request's record is queued by now. Reached whatever the registries did; the last
    // traces go meanwhile, not after it (the two do not wait on each other).
    await Promise.all([
      bounded(logger, 'closing the audit log', Math.max(deadline + AUDIT_CLOSE_MARGIN_MS - performance.now(), AUDIT_CLOSE_MIN_MS), () => deps.audit.close(), () => ({ records_not_written: deps.audit.stats().queueDepth })),
      bounded(logger, 'exporting the last traces', Math.max(deadline - performance.now(), CLOSE_STEP_MIN_MS), () => deps.tracing?.shutdown()),
    ])
    // The store closes once a rotation whose hook runs has written its value: the process ended
    // under it, the hook (a process group of its own) gave the upstream a value the store never
    // held, and the restarted gateway sent one the upstream no longer took (found by the secrets probe).
    const rotating = [...(live.secrets.rotations?.running ?? [])]
    if (rotating.length > 0) logger.info({ secret_names: rotating }, 'shutdown: waiting for the secret rotation under way (its hook, then the write of the new value)')
    await bounded(logger, `the rotation of ${rotating.join(', ') || 'no secret'} (a hook that goes on may give the upstream a value the store will not hold)`, Math.max(deadline - performance.now(), CLOSE_STEP_MIN_MS), () => live.secrets.close())
  }
}
