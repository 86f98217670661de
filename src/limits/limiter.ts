// Throttling (SPEC "Decisions" step 5): each limit of the route, keyed as configured, checked and
// taken together in the store; the first exhausted limit refuses with 429 and Retry-After. Every
// response of a limited route carries the IETF RateLimit-Policy and RateLimit headers.
import type { LimitConfig, LimitsStoreConfig } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import type { RequestContext } from '../request/index.ts'
import type { Logger } from '../telemetry/index.ts'
import type { RateSpec } from './bucket.ts'
import { policyItem, stateHeader } from './headers.ts'
import { keyValue, parseKeySource, type KeySource } from './keys.ts'
import type { QuotaSpec } from './quota.ts'
import type { Check, LimitsStore, TakeResult } from './store.ts'
import { createMemoryStore } from './stores/memory.ts'
import { createRedisStore } from './stores/redis.ts'

interface LimitPart {
  limit: string
  /** `name|` for a rate, `name#q|` for a quota: a limit with both keeps two states per key. */
  keyPrefix: string
  /** The policy's name in the RateLimit headers (`name`, or `name/rate` and `name/quota`). */
  label: string
  source: KeySource
  rate: RateSpec | null
  quota: QuotaSpec | null
}

export interface RouteLimits {
  readonly names: readonly string[]
  readonly parts: readonly LimitPart[]
  readonly labels: readonly string[]
  readonly policyHeader: string
}

export function compileRouteLimits(names: readonly string[], limits: readonly LimitConfig[]): RouteLimits | null {
  if (names.length === 0) return null
  const parts: LimitPart[] = []
  for (const name of names) {
    const config = limits.find((l) => l.name === name) as LimitConfig
    const source = parseKeySource(config.key, config.ip_prefix_v6)
    const both = config.rate !== undefined && config.quota !== undefined
    if (config.rate) {
      const rate = { intervalMs: config.rate.periodMs / config.rate.count, burst: config.burst ?? config.rate.count }
      parts.push({ limit: name, keyPrefix: `${name}|`, label: both ? `${name}/rate` : name, source, rate, quota: null })
    }
    if (config.quota) {
      const quota = { count: config.quota.count, periodMs: config.quota.periodMs }
      parts.push({ limit: name, keyPrefix: `${name}#q|`, label: both ? `${name}/quota` : name, source, rate: null, quota })
    }
  }
  return Object.freeze({
    names,
    parts,
    labels: parts.map((p) => p.label),
    policyHeader: parts.map((p) => policyItem(p.label, p.rate, p.quota)).join(', '),
  })
}

export interface Limiter {
  readonly store: LimitsStore
  readonly onError: 'allow' | 'deny'
  readonly logger: Logger
}

let lastAllowLog = 0

/**
 * Checks and takes the route's limits. A promise only when the store needs one (Redis): the
 * memory store answers at once, and an await would cost it more than the check itself.
 */
export function enforceLimits(limiter: Limiter, ctx: RequestContext, limits: RouteLimits): void | Promise<void> {
  const parts = limits.parts
  const checks: Check[] = new Array(parts.length)
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as LimitPart
    checks[i] = { key: part.keyPrefix + keyValue(part.source, ctx), rate: part.rate, quota: part.quota }
  }
  let taken: TakeResult | Promise<TakeResult>
  try {
    taken = limiter.store.take(checks)
  } catch (err) {
    return storeFailed(limiter, ctx, err)
  }
  if (taken instanceof Promise) {
    return taken.then(
      (result) => apply(ctx, limits, result),
      (err: unknown) => storeFailed(limiter, ctx, err),
    )
  }
  apply(ctx, limits, taken)
}

function apply(ctx: RequestContext, limits: RouteLimits, result: TakeResult): void {
  if (result.reason === 'full') return refuseFull(ctx, limits.parts[result.refused] as LimitPart, result.retryAfterMs)
  const res = ctx.res
  res.setHeader('ratelimit-policy', limits.policyHeader)
  res.setHeader('ratelimit', stateHeader(limits.labels, result.states))
  if (result.refused === -1) return
  const part = limits.parts[result.refused] as LimitPart
  ctx.limit = part.limit
  const retryAfter = Math.max(1, Math.ceil(result.retryAfterMs / 1000))
  if (part.rate) {
    const perSecond = Math.round((1000 / part.rate.intervalMs) * 100) / 100
    throw new GatewayError('rate_limited', {
      detail: `Limit "${part.limit}" allows ${perSecond} requests/s with a burst of ${part.rate.burst}; retry in ${retryAfter}s.`,
      headers: { 'retry-after': String(retryAfter) },
    })
  }
  throw new GatewayError('quota_exceeded', {
    detail: `Quota "${part.limit}" (${part.quota?.count} per window) is used up; it resets at ${new Date(Date.now() + result.retryAfterMs).toISOString()}.`,
    headers: { 'retry-after': String(retryAfter) },
  })
}

/**
 * The memory store is full of live limits and this request needs a new key. Naming the limit puts
 * the refusal in the audit record and in bouncer_rate_limited_total{code="limits_unavailable"}.
 */
function refuseFull(ctx: RequestContext, part: LimitPart, retryAfterMs: number): never {
  ctx.limit = part.limit
  throw new GatewayError('limits_unavailable', {
    detail: `The limits store is full (limits_store.max_keys) and limit "${part.limit}" has no state for this caller yet; retry shortly.`,
    headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) },
  })
}

/** on_error: allow lets the request through (logged at most every 10 s); deny refuses it. */
function storeFailed(limiter: Limiter, ctx: RequestContext, err: unknown): void {
  if (limiter.onError === 'allow') {
    if (Date.now() - lastAllowLog > 10_000) {
      lastAllowLog = Date.now()
      limiter.logger.warn({ err, route: ctx.route?.id }, 'limits store unavailable: letting requests through (on_error: allow)')
    }
    return
  }
  throw new GatewayError('limits_unavailable', {
    detail: 'The limits store is unavailable and limits_store.on_error is deny.',
    headers: { 'retry-after': '1' },
    cause: err,
  })
}

export interface LimitsStoreRegistry {
  acquire(config: LimitsStoreConfig): LimitsStore
  retire(keep: LimitsStore): void
  closeAll(): Promise<void>
}

/**
 * Stores live as long as their settings: a reload keeps buckets and the Redis connection.
 * `offline` (bouncer explain) never connects: every store is an empty memory store.
 */
export function createLimitsStoreRegistry(logger: Logger, options: { offline?: boolean } = {}): LimitsStoreRegistry {
  const live = new Map<string, LimitsStore>()
  return {
    acquire(config) {
      const key = JSON.stringify(config)
      let store = live.get(key)
      if (!store) {
        store = config.type === 'memory' || options.offline
          ? createMemoryStore({ maxKeys: config.type === 'memory' ? config.max_keys : 1_000, logger })
          : createRedisStore({ url: config.url, prefix: config.prefix, timeoutMs: config.timeout, logger })
        live.set(key, store)
      }
      return store
    },
    retire(keep) {
      for (const [key, store] of live) {
        if (store === keep) continue
        live.delete(key)
        void store.close()
      }
    },
    async closeAll() {
      await Promise.all([...live.values()].map((s) => s.close()))
      live.clear()
    },
  }
}
