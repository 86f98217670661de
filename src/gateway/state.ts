import type { Duplex } from 'node:stream'
import type { AuditLog } from '../audit/index.ts'
import type { Logger, Metrics, Tracing } from '../telemetry/index.ts'
import type { Runtime } from './compile.ts'
import type { TunnelRegistry } from './tunnels.ts'

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
  /**
   * The last reload's refusal, until a reload succeeds: when, and how many problems (the log has
   * them; /readyz, which anyone reaching the admin listener reads, gives no config text). One
   * instance of several on one file may be the only one that cannot load it (an environment
   * variable, a file, a secret of its own) and keep serving the old config.
   */
  reloadRefused?: { at: string; problems: number } | null
  /**
   * Client sockets node:http handed over at an upgrade, until they close: a handshake being
   * authorized or answered, a tunnel, a refusal lingering. node:http no longer tracks them, so its
   * closeAllConnections() leaves them to the shutdown's cut.
   */
  readonly tunnels: Set<Duplex>
  /** WebSocket tunnels once open (past their 101): closed on a revocation, a reload that refuses them, the drain. */
  readonly openTunnels: TunnelRegistry
}
