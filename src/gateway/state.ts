import type { Duplex } from 'node:stream'
import type { AuditLog } from '../audit/index.ts'
import type { Logger, Metrics, Tracing } from '../telemetry/index.ts'
import type { Runtime } from './compile.ts'

/** What lives as long as the process: the current runtime (swapped on reload) and counters. */
export interface GatewayState {
  runtime: Runtime
  readonly logger: Logger
  readonly audit: AuditLog
  readonly metrics: Metrics
  /** null unless telemetry.otlp_endpoint is set. */
  readonly tracing: Tracing | null
  /** Set on SIGTERM: responses say `Connection: close` so clients move to another instance. */
  draining: boolean
  /** Set when the drain's shutdown_timeout ran out and the connections still open are cut: their records say so. */
  cutAtShutdown?: boolean
  inFlight: number
  /** Client sockets of open WebSocket tunnels: node:http no longer tracks them after the upgrade. */
  readonly tunnels: Set<Duplex>
}
