// Retries (upstreams[].retries): which failed tries may be sent again, and the budget that bounds
// them. The rule that matters: a request the upstream may have received is sent again only when
// its method is idempotent (RFC 9110 §9.2.2); a connection that failed carried nothing, so any
// request may follow it to another target, as nginx's proxy_next_upstream does. Only bodies the
// gateway holds whole (up to 64 KiB, already here, or a form's or JSON body's, read whole for its
// `_method`) can be sent twice; a longer one streams once,
// and follows only a failed connection, which read none of it (dispatch.ts).
//
// The budget (Finagle's and gRPC's retry throttling; Envoy calls it a retry budget): every
// request adds `budget` (0.2 for 20%) of a retry to the upstream's credit, every retry spends one,
// and the credit is capped at RETRY_RESERVE. So retries are at most 20% of the requests plus the
// reserve, and an upstream that fails everything sees 1.2× its load, not `attempts`×.
import type { Readable } from 'node:stream'
import type { RetriesConfig } from '../config/index.ts'
import { hasBody } from '../http/index.ts'
import { bodyTooLarge, type RequestContext, type Served } from '../request/index.ts'

/** What a retry may follow (RETRY_FAILURES, and statuses). */
export type Failure = 'connect_failure' | 'reset' | 'timeout' | number

export interface RetryPolicy {
  /** Tries in all, the first included. */
  readonly attempts: number
  readonly onConnectFailure: boolean
  readonly onReset: boolean
  readonly onTimeout: boolean
  readonly statuses: ReadonlySet<number>
  /** Retry credit added per request (the budget as a ratio). */
  readonly ratio: number
}

/** The credit an idle upstream has: a few retries are always possible, whatever the recent traffic. */
export const RETRY_RESERVE = 10
/** Bodies the gateway keeps whole to send again: the window it waits for anyway (body-buffer). */
export const REPLAY_LIMIT = 65_536
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

export function retryPolicy(config: RetriesConfig | undefined): RetryPolicy | null {
  if (config === undefined || config.attempts < 2) return null
  const on = new Set(config.on.map(String))
  return {
    attempts: config.attempts,
    onConnectFailure: on.has('connect_failure'),
    onReset: on.has('reset'),
    onTimeout: on.has('timeout'),
    statuses: new Set([...on].filter((c) => /^\d+$/.test(c)).map(Number)),
    ratio: config.budget,
  }
}

/** The upstream's side of the budget, and its counters for the metrics. */
export interface RetryBudget {
  retryCredit: number
  readonly retryCounts: RetryCounts
}

/** Retries sent and refused by the budget: counters that outlive the upstream (pools.ts). */
export interface RetryCounts {
  retries: number
  retriesOverBudget: number
}

/** A request counts towards the budget once, on its first try. */
export function depositRetryCredit(budget: RetryBudget, policy: RetryPolicy): void {
  budget.retryCredit = Math.min(RETRY_RESERVE, budget.retryCredit + policy.ratio)
}

/** Spends one retry, or says the budget is spent. */
export function takeRetry(budget: RetryBudget): boolean {
  if (budget.retryCredit < 1) {
    budget.retryCounts.retriesOverBudget++
    return false
  }
  budget.retryCredit -= 1
  budget.retryCounts.retries++
  return true
}

/** Whether the policy retries this failure for a request of this kind. */
export function retriesFailure(policy: RetryPolicy, failure: Failure, idempotent: boolean): boolean {
  if (failure === 'connect_failure') return policy.onConnectFailure
  if (!idempotent) return false
  if (failure === 'reset') return policy.onReset
  if (failure === 'timeout') return policy.onTimeout
  return policy.statuses.has(failure)
}

/** RFC 9110 §9.2.2: a method whose request may be sent twice with the effect of once. */
export function idempotent(method: string): boolean {
  return IDEMPOTENT.has(method)
}

/** A request that can be sent more than once: its body (null: none), held whole. */
export interface Replayable {
  readonly body: Buffer | null
  readonly idempotent: boolean
}

/**
 * The request's body held whole (a retry must send it again), when it is complete and small or was
 * read whole already (a form's or JSON body's: RequestContext.bodyHeld), and counted into `served.bytesIn`; null
 * when it streams, and is then sent once.
 */
export function replayable(ctx: Readonly<RequestContext>, maxBodyBytes: number, served: Served): Replayable | null {
  const isIdempotent = idempotent(ctx.method)
  const inbound = ctx.headers
  if (inbound === null || !hasBody(inbound)) return { body: null, idempotent: isIdempotent }
  const req: Readable & { complete: boolean } = ctx.req
  // Every byte a Content-Length announced is here (`complete` comes a tick later); a chunked body
  // is whole only once its last chunk was read.
  const whole = inbound.chunked ? req.complete : req.readableLength >= (inbound.contentLength as number)
  if (!whole || (req.readableLength > REPLAY_LIMIT && !ctx.bodyHeld)) return null
  const body = (req.read() as Buffer | null) ?? Buffer.alloc(0)
  if (body.length > maxBodyBytes) throw bodyTooLarge(maxBodyBytes)
  served.bytesIn = body.length
  return { body, idempotent: isIdempotent }
}
