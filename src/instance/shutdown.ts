// SIGTERM: stop accepting, let requests in flight finish, then close listeners, pools, key sets,
// stores, the audit log (last: every record is queued by then). The waits share one deadline,
// server.shutdown_timeout from the signal: the hard stops past it (an uncaught exception's, a
// server.workers thread's) are counted from there too.
import type { Server } from 'node:http'
import { adminChangesRecorded } from '../admin/index.ts'
import type { GatewayServer } from '../gateway/index.ts'
import { setTimeout as sleep } from 'node:timers/promises'
import type { AuditLog } from '../audit/index.ts'
import type { Tracing } from '../telemetry/index.ts'
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

export function createShutdown(live: Live, deps: ShutdownDeps): () => Promise<void> {
  const { state } = live
  return async function shutdown(): Promise<void> {
    if (state.draining) return
    state.draining = true
    const deadline = Date.now() + state.runtime.config.server.shutdown_timeout
    deps.refresh.stop()
    deps.gatewayServer.close()
    deps.gatewayServer.closeIdleConnections()
    // MCP sessions' notification streams never end on their own: end them, not wait them out. Their
    // tool calls in flight are requests like any other: drained, then the sessions close with the registries.
    deps.quiesceMcpSessions()
    while (state.inFlight > 0 && Date.now() < deadline) await sleep(20)
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
    await adminChangesRecorded(state.logger, deadline - Date.now())
    await deps.closeRegistries()
    await deps.audit.close() // last: every request's record is queued by now
    await deps.tracing?.shutdown()
    live.secrets.close()
  }
}
