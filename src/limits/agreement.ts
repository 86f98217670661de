// Gateway instances on one Redis limits store count the same buckets (a limit's name and key): two
// whose limits differ (10/m on one, 20/m on the other, a rolling change left half done, a config
// edited on one host) each enforce their own on the same callers, and nothing said so (an operations
// report; the TAKE script's span keys keep the counts consistent, not the limits the same). Each
// instance publishes its limits in the store (a field that lives as long as it is refreshed),
// compares them with the others' at start, after a reload and every AGREEMENT_INTERVAL_MS, and says
// which instances differ and how: a warning when that changes, `bouncer_limits_config_mismatch`
// on /metrics. Off the request path: a timer's one small script, on the store's connection.
import type { LimitConfig } from '../config/index.ts'
import type { Logger } from '../telemetry/index.ts'
import type { LimitsDescription, LimitsStore } from './store.ts'

/** How often an instance publishes and compares its limits. */
export const AGREEMENT_INTERVAL_MS = 5_000
/** An instance not heard from for this long has stopped (without taking its limits back): it is not compared. */
const AGREEMENT_TTL_MS = 3 * AGREEMENT_INTERVAL_MS
/** A warning names at most this many differences (and says how many more). */
const MAX_DIFFERENCES = 20

/** limits[].ip_prefix_v6's default (config schema). */
const DEFAULT_IP_PREFIX_V6 = 64

/** What one limit enforces, in words two instances compare: `key principal, rate 10/minute, burst 10`. */
function describeLimit(limit: LimitConfig): string {
  const parts = [`key ${limit.key}`]
  if (limit.rate) parts.push(`rate ${limit.rate.count}/${limit.rate.per}`, `burst ${limit.burst ?? limit.rate.count}`)
  if (limit.quota) parts.push(`quota ${limit.quota.count}/${limit.quota.per}`)
  // An identity key counts callers by address on a public route (keys.ts), by this prefix too;
  // spelled out when not the default, which instances of earlier versions leave out.
  if (limit.key === 'ip' || (limit.ip_prefix_v6 !== DEFAULT_IP_PREFIX_V6 && !limit.key.startsWith('header:') && limit.key !== 'route')) parts.push(`ip_prefix_v6 ${limit.ip_prefix_v6}`)
  return parts.join(', ')
}

/** The `limits` section, each limit by its name (the buckets' names in the store). */
export function describeLimits(limits: readonly LimitConfig[]): LimitsDescription {
  return Object.fromEntries(limits.map((limit) => [limit.name, describeLimit(limit)]))
}

export interface LimitsDisagreement {
  /** The other instances whose limits differ from this one's, sorted. */
  instances: string[]
  /** Each difference in words: `per-principal: key principal, rate 10/minute, burst 10 here; … on gw-2`. */
  differences: string[]
}

export function disagreementOf(own: LimitsDescription, others: ReadonlyMap<string, LimitsDescription>): LimitsDisagreement {
  const instances: string[] = []
  const differences: string[] = []
  for (const instance of [...others.keys()].sort()) {
    const theirs = others.get(instance) as LimitsDescription
    const names = [...new Set([...Object.keys(own), ...Object.keys(theirs)])].sort()
    let differs = false
    for (const name of names) {
      const here = Object.hasOwn(own, name) ? own[name] : undefined
      const there = Object.hasOwn(theirs, name) ? theirs[name] : undefined
      if (here === there) continue
      differs = true
      differences.push(`${name}: ${here ?? 'not configured'} here; ${there ?? 'not configured'} on ${instance}`)
    }
    if (differs) instances.push(instance)
  }
  if (differences.length > MAX_DIFFERENCES) differences.splice(MAX_DIFFERENCES, Infinity, `and ${differences.length - MAX_DIFFERENCES} more`)
  return { instances, differences }
}

export interface LimitsAgreement {
  /** Publishes this instance's limits and compares them with the others' now (at start, after a reload). */
  check(): Promise<void>
  /** How many other instances on the store enforce different limits (as of the last comparison). */
  mismatched(): number
  /** Stops comparing and takes this instance's limits out of the store: the others stop comparing with a gateway gone. */
  stop(): Promise<void>
}

export interface LimitsAgreementOptions {
  /** This instance's id (audit.instance_id, $BOUNCER_INSTANCE, host:pid), as its logs and records name it. */
  instance: string
  /** The running config's store and limits (a reload changes them). */
  current: () => { store: LimitsStore; limits: readonly LimitConfig[] }
  logger: Logger
}

export function watchLimitsAgreement(options: LimitsAgreementOptions): LimitsAgreement {
  const { instance, logger } = options
  let mismatched = 0
  /** The disagreement last logged (as JSON), '' while they agree: a warning when it changes, not every interval. */
  let said = ''
  /** The store this instance's limits were last published in, to take them back from. */
  let publishedIn: LimitsStore | null = null
  let stopped = false
  /** Comparisons run one at a time: a reload's waits for the timer's. */
  let turn: Promise<void> = Promise.resolve()

  async function compare(): Promise<void> {
    if (stopped) return
    const { store, limits } = options.current()
    if (!store.shareLimits) {
      // A memory store is this instance's own: nothing is shared, nothing to disagree on.
      publishedIn = null
      mismatched = 0
      said = ''
      return
    }
    const own = describeLimits(limits)
    let others: Map<string, LimitsDescription>
    try {
      others = await store.shareLimits(instance, own, AGREEMENT_TTL_MS)
    } catch (err) {
      // Redis away: the store says so itself (limits store unavailable); the last comparison stands.
      logger.debug({ store: store.kind, err }, 'the limits could not be compared with the other instances\' this time')
      return
    }
    publishedIn = store
    const found = disagreementOf(own, others)
    mismatched = found.instances.length
    const text = mismatched > 0 ? JSON.stringify(found) : ''
    if (text !== '' && text !== said) {
      logger.warn({ store: store.kind, instances: found.instances, differences: found.differences }, `gateway instances sharing the limits store enforce different limits (${found.instances.join(', ')}): each counts the same buckets by its own; give every instance the same limits`)
    } else if (text === '' && said !== '') {
      logger.info({ store: store.kind }, 'the gateway instances sharing the limits store enforce the same limits again')
    }
    said = text
  }

  function check(): Promise<void> {
    turn = turn.then(compare).catch((err: unknown) => logger.warn({ err }, 'comparing the limits with the other instances\' failed'))
    return turn
  }

  const timer = setInterval(() => void check(), AGREEMENT_INTERVAL_MS)
  timer.unref()

  return {
    check,
    mismatched: () => mismatched,
    async stop() {
      clearInterval(timer)
      stopped = true
      await turn
      try {
        await publishedIn?.withdrawLimits?.(instance)
      } catch {
        // Gone within AGREEMENT_TTL_MS all the same.
      }
    },
  }
}
