// What makes a gateway one of server.workers' request-path workers rather than the whole gateway.
import { join } from 'node:path'
import { checkpointPathOf, instanceIdOf } from '../../audit/index.ts'
import { spillShare, type AuditConfig } from '../../config/index.ts'
import type { SharedLimitsTable } from '../../limits/index.ts'
import type { SharedInFlight } from '../../upstream/index.ts'

/** The worker that runs what must run once for the gateway (secrets.rotation's schedule): its replacement keeps the id. */
export const FIRST_WORKER = 'w1'

export interface WorkerRole {
  /** `w1`, `w2`, …: a restarted worker keeps its id, so it continues its audit chain. */
  id: string
  /** How many request-path workers there are: each takes an equal share of audit.spill_max_bytes. */
  workers: number
  /** The memory limits store every worker shares (the primary made it). */
  sharedLimits?: SharedLimitsTable
  /** The store of the keys the gateway makes itself (secrets/shared-memory.ts): one for all workers, the primary's. */
  sharedKeys?: SharedArrayBuffer
  /**
   * The API key revocation counters every worker shares (the primary made them): a key revoked through
   * one worker's admin API is refused by all at once, even by a lookup under way (identity/api-keys/directory.ts).
   */
  apiKeyRevocations?: SharedArrayBuffer
  /**
   * The issuers' key withdrawal counters every worker shares (the primary made them): a key one
   * worker's fetch found withdrawn is fetched away by the others before their next token (identity/issuers.ts).
   */
  keyWithdrawals?: SharedArrayBuffer
  /**
   * The MCP session ids DELETEd, on any worker (agents/mcp/ended-sessions.ts, the primary's): never
   * opened again by another worker, nor by a replacement started after the DELETE.
   */
  mcpEndedSessions?: SharedArrayBuffer
  /**
   * The upstreams' requests in flight, every worker's (upstream/in-flight.ts, the primary's), and
   * this worker's column of it: max_concurrent is the whole gateway's ceiling.
   */
  upstreamInFlight?: SharedInFlight
  /** Where its admin listener is: a Unix socket in a directory only the primary's user reads. */
  adminSocket: string
  /**
   * The TLS session ticket keys in force, the same in every worker (the primary makes them, new at
   * each reload): with a context's own random keys, a ticket resumed only on the worker that issued
   * it (a probe: 17 of 40 reconnections did a full handshake with two workers).
   */
  ticketKeys?: Buffer
  /** Records its audit log has taken and no sink has yet (audit/log.ts): the primary counts them as dropped if it ends without draining. */
  auditOutstanding?: Int32Array
  /**
   * A crashed worker's replacement joins workers that serve, behind a /readyz that already says
   * ready: it listens once its issuers' keys have been tried (bounded), not while every token it is
   * sent would get 503 "still loading" (a probe).
   */
  replacement?: boolean
  /** The generation of the config it is given (Runtime.generation): the gateway's, which the primary counts. */
  generation?: number
}

/**
 * Each worker writes its own audit chain (a chain is one writer's sequence): records say
 * `<instance>/w1`, and the chain's state and spill files live in `<spill_dir>/w1`. The checkpoint
 * file stays the gateway's one file (each line names its chain), where `audit verify` reads it.
 * `spill_max_bytes` bounds the gateway's spill directory: each of the `workers` gets an equal share.
 */
export function workerAuditConfig(audit: AuditConfig, id: string, workers: number, env: NodeJS.ProcessEnv = process.env): AuditConfig {
  return {
    ...audit,
    instance_id: `${instanceIdOf(audit.instance_id, env)}/${id}`,
    spill_dir: join(audit.spill_dir, id),
    spill_max_bytes: spillShare(audit.spill_max_bytes, workers),
    checkpoint_path: checkpointPathOf(audit),
  }
}
