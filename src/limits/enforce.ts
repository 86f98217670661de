// Throttling (SPEC "Decisions" step 5): each limit of the route, keyed as configured, checked and
// taken together in the store. When any is exhausted none is charged, and the 429's Retry-After is
// when every one would admit: the longest wait among the exhausted ones, whose limit the 429 names
// (its code, the audit record). Every response of a limited route carries the IETF RateLimit-Policy
// header and, when the store answered, RateLimit with every limit as it stands: the verdict says
// what they hold, and the pipeline writes them.
import { GatewayError } from '../errors/index.ts'
import type { Logger } from '../telemetry/index.ts'
import { stateHeader } from './headers.ts'
import { keyValue, type LimitedRequest } from './keys.ts'
import type { QuotaSpec } from './quota.ts'
import type { LimitPart, RouteLimits } from './route-limits.ts'
import type { Check, LimitsStore, TakeResult } from './store.ts'

export interface Limiter {
  readonly store: LimitsStore
  readonly onError: 'allow' | 'deny'
  readonly logger: Logger
}

/** What throttling decided for one request. */
export interface LimitVerdict {
  /** RateLimit-Policy for the response: the route's, from the config, whatever the store did. */
  readonly policy: string | null
  /** RateLimit for the response; null when the store did not answer (or was full): no state to report. */
  readonly state: string | null
  /** The limit that refused (for the audit record and metrics), or null. */
  readonly limit: string | null
  /** The refusal to answer with (429, or 503 limits_unavailable), or null to go on. */
  readonly error: GatewayError | null
}

/**
 * When each store's failure was last logged (at most every 10 s). Per store, not per process: a
 * gateway's log said nothing of its store's failures for 10 s after another gateway in the process
 * (test files sharing one) logged its own, and a reload to another store waited out the old one's.
 */
const lastFailureLog = new WeakMap<LimitsStore, number>()

/**
 * Limited requests the store could not check, by what on_error made of them, since the process
 * started (bouncer_limits_store_failures_total): with allow they went through unmetered, and only a
 * log line every 10 s said so; with deny their 503 named no limit, so no limit's counter had them.
 */
const storeFailures = { allow: 0, deny: 0 }

export function limitsStoreFailures(): Readonly<{ allow: number; deny: number }> {
  return storeFailures
}

/**
 * Checks and takes the route's limits. A promise only when the store needs one (Redis): the
 * memory store answers at once, and an await would cost it more than the check itself. One small
 * verdict object per request, besides the checks and the RateLimit value.
 */
export function enforceLimits(limiter: Limiter, request: LimitedRequest, limits: RouteLimits): LimitVerdict | Promise<LimitVerdict> {
  const parts = limits.parts
  const checks: Check[] = new Array(parts.length)
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as LimitPart
    checks[i] = { key: part.keyPrefix + keyValue(part.source, request), rate: part.rate, quota: part.quota }
  }
  let taken: TakeResult | Promise<TakeResult>
  try {
    taken = limiter.store.take(checks)
  } catch (err) {
    return storeFailed(limiter, request, limits, err)
  }
  if (taken instanceof Promise) {
    return taken.then(
      (result) => verdictOf(limits, result),
      (err: unknown) => storeFailed(limiter, request, limits, err),
    )
  }
  return verdictOf(limits, taken)
}

function verdictOf(limits: RouteLimits, result: TakeResult): LimitVerdict {
  if (result.reason === 'full') return refuseFull(limits, limits.parts[result.refused] as LimitPart, result.retryAfterMs)
  const policy = limits.policyHeader
  const state = stateHeader(limits, result.states)
  if (result.refused === -1) return { policy, state, limit: null, error: null }
  // The store names the exhausted limit with the longest wait (entry-rules.ts, longerWait).
  const part = limits.parts[result.refused] as LimitPart
  const retryAfter = Math.max(1, Math.ceil(result.retryAfterMs / 1000))
  if (part.rate) {
    return {
      policy,
      state,
      limit: part.limit,
      error: new GatewayError('rate_limited', {
        detail: `Limit "${part.limit}" allows ${part.rateText} with a burst of ${part.rate.burst}; retry in ${retryAfter}s.`,
        headers: { 'retry-after': String(retryAfter) },
      }),
    }
  }
  return {
    policy,
    state,
    limit: part.limit,
    error: new GatewayError('quota_exceeded', {
      detail: `Quota "${part.limit}" (${part.rateText}) is used up; it resets at ${windowEnd(part, result.retryAfterMs)}.`,
      headers: { 'retry-after': String(retryAfter) },
    }),
  }
}

/**
 * When the quota's window ends: a multiple of its period (windows are UTC-aligned). The wait is
 * measured on the store's clock (Redis's, in microseconds) and read here on the gateway's, a
 * millisecond or so apart: added up as they were, one refusal said 42:59.999 and the next
 * 43:00.000 (probe finding). Rounded to the window boundary, both say 43:00.000.
 */
function windowEnd(part: LimitPart, retryAfterMs: number): string {
  const periodMs = (part.quota as QuotaSpec).periodMs
  return new Date(Math.round((Date.now() + retryAfterMs) / periodMs) * periodMs).toISOString()
}

/**
 * The memory store is full of live limits and this request needs a new key. Naming the limit puts
 * the refusal in the audit record and in bouncer_rate_limited_total{code="limits_unavailable"};
 * nothing was counted, so there is no RateLimit, only the route's RateLimit-Policy.
 */
function refuseFull(limits: RouteLimits, part: LimitPart, retryAfterMs: number): LimitVerdict {
  return {
    policy: limits.policyHeader,
    state: null,
    limit: part.limit,
    error: new GatewayError('limits_unavailable', {
      detail: `The limits store is full (limits_store.max_keys) and limit "${part.limit}" has no state for this caller yet; retry shortly.`,
      headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) },
    }),
  }
}

/**
 * on_error: allow lets the request through; deny refuses it. Either way it is logged (at most every
 * 10 s, with why: refused, closed, or slower than limits_store.timeout) and nothing was counted:
 * RateLimit-Policy (the config's) is sent, RateLimit (a state) is not. A Redis that answers every
 * check late once turned each limited request into a 503 with no line in the log (probe finding).
 */
function storeFailed(limiter: Limiter, request: LimitedRequest, limits: RouteLimits, err: unknown): LimitVerdict {
  storeFailures[limiter.onError]++
  if (Date.now() - (lastFailureLog.get(limiter.store) ?? 0) > 10_000) {
    lastFailureLog.set(limiter.store, Date.now())
    const outcome = limiter.onError === 'allow' ? 'letting requests through (on_error: allow)' : 'refusing limited requests (on_error: deny)'
    limiter.logger.warn({ err, route: request.route?.id }, `limits store unavailable: ${outcome}`)
  }
  if (limiter.onError === 'allow') return limits.uncounted
  return {
    policy: limits.policyHeader,
    state: null,
    limit: null,
    error: new GatewayError('limits_unavailable', {
      detail: 'The limits store is unavailable and limits_store.on_error is deny.',
      headers: { 'retry-after': '1' },
      cause: err,
    }),
  }
}
