import type { Duplex } from 'node:stream'
import type { ExchangeKeys } from '../agents/index.ts'
import type { AuditLog } from '../audit/index.ts'
import type { Logger, Metrics, Tracing } from '../telemetry/index.ts'
import type { AssertionSigner } from '../upstream/index.ts'
import type { Runtime } from './compile.ts'

/** What lives as long as the process: the current runtime (swapped on reload) and counters. */
export interface GatewayState {
  runtime: Runtime
  readonly logger: Logger
  readonly audit: AuditLog
  readonly metrics: Metrics
  /** null unless telemetry.otlp_endpoint is set. */
  readonly tracing: Tracing | null
  /**
   * The current runtime's signer of X-Bouncer-Assertion (null until an upstream asks for identity
   * assertions): the JWKS endpoint publishes it and the next reload carries it on. A request signs
   * with its own runtime's (Runtime.signing), which a reload does not change under it.
   */
  assertions: AssertionSigner | null
  /** The current runtime's keys for the tokens POST /oauth2/token issues (null unless token_exchange is on); rotated in place. */
  exchangeKeys: ExchangeKeys | null
  /** Set on SIGTERM: responses say `Connection: close` so clients move to another instance. */
  draining: boolean
  inFlight: number
  /** Client sockets of open WebSocket tunnels: node:http no longer tracks them after the upgrade. */
  readonly tunnels: Set<Duplex>
}
