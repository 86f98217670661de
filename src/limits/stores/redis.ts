// The shared limits store: Redis, so every gateway instance draws from the same buckets. One Lua
// script checks and takes all of a request's limits atomically, in one round trip, on Redis's own
// clock (TIME), so instances with skewed clocks still agree. Times are integer microseconds so a
// fractional interval (1000 ms / 3) does not drift, and stored as integers (Lua would print a
// double as 1.7e+15 and lose the digits).
//
// ioredis is set to fail fast while Redis is away (no offline queue, no retries per command, a
// command timeout): the caller's on_error setting then decides, and the client reconnects by itself.
// Auto-pipelining stays off: it halves a script's throughput (DESIGN, measured).
import { createRequire } from 'node:module'
import type { Redis as RedisClient } from 'ioredis'
import { DeadlineExceeded, reconnectOnReadOnly, REPLICA_STATE, withinDeadline } from '../../collections/index.ts'
import type { Logger } from '../../telemetry/index.ts'
import type { Check, CheckState, LimitsDescription, LimitsStore, TakeResult } from '../store.ts'

const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {0, 0}
local writes = {}
local allowed = {}
-- KEYS: each check's key, then each check's span key (SPAN_KEY)
local n = #KEYS / 2
-- Every check is read, even past one that refuses: a 429 reports every limit as it stands and waits
-- for the one that frees last (the first of equal waits), as entry-rules.ts (longerWait, refusedBy).
for i = 1, n do
  local key = KEYS[i]
  local kind = ARGV[(i - 1) * 3 + 1]
  local a = tonumber(ARGV[(i - 1) * 3 + 2])
  local b = tonumber(ARGV[(i - 1) * 3 + 3])
  if kind == 'r' then
    -- GCRA: a = emission interval (us), b = burst; span = b * a, a whole bucket
    local span = b * a
    local tat = tonumber(redis.call('GET', key) or '0')
    -- A TAT stored under another span (another instance's config during a rolling change, or this
    -- one's before a reload) is read as the same share of this bucket, and stored back so: capped
    -- at this span instead, one instance's refusals wiped what the other's allowed, and a caller
    -- alternating between them was never limited (probe finding)
    local stored_span = tonumber(redis.call('GET', KEYS[n + i]) or '0')
    local rescaled = stored_span > 0 and stored_span ~= span and tat > now
    if rescaled then tat = now + math.floor((tat - now) * span / stored_span) end
    if tat < now then tat = now end
    -- never more than an empty bucket ahead (a raised rate, a clock step): bucket.ts says why, and
    -- entry-rules.ts (cappedTat) why a capped one is stored back
    local capped = tat > now + span
    if capped then tat = now + span end
    local nxt = tat + a
    local allow_at = nxt - span
    if allow_at > now then
      if capped or rescaled then
        local ttl = math.ceil((tat - now) / 1000) + 1000
        redis.call('SET', key, string.format('%.0f', tat), 'PX', ttl)
        redis.call('SET', KEYS[n + i], string.format('%.0f', span), 'PX', ttl)
      end
      if allow_at - now > out[2] then
        out[1] = i
        out[2] = allow_at - now
      end
      table.insert(out, 0)
      table.insert(out, tat - now)
    else
      allowed[i] = true
      table.insert(out, math.floor((now - allow_at) / a))
      table.insert(out, nxt - now)
      table.insert(writes, {'r', key, nxt, math.ceil((nxt - now) / 1000) + 1000, KEYS[n + i], span})
    end
  else
    -- quota: a = count, b = window (us), counted per calendar window
    local start = math.floor(now / b) * b
    local wkey = key .. '@' .. string.format('%.0f', start / b)
    local used = tonumber(redis.call('GET', wkey) or '0')
    local reset = start + b - now
    if used >= a then
      if reset > out[2] then
        out[1] = i
        out[2] = reset
      end
      table.insert(out, 0)
      table.insert(out, reset)
    else
      allowed[i] = true
      table.insert(out, a - used - 1)
      table.insert(out, reset)
      table.insert(writes, {'q', wkey, 0, math.ceil(reset / 1000) + 1000})
    end
  end
end
if out[1] > 0 then
  -- Nothing is charged: the checks that would allow report what remained before this request (a
  -- rate's take moved its TAT one interval on, a quota's counted one).
  for j = 1, n do
    if allowed[j] then
      out[1 + 2 * j] = out[1 + 2 * j] + 1
      if ARGV[(j - 1) * 3 + 1] == 'r' then out[2 + 2 * j] = out[2 + 2 * j] - tonumber(ARGV[(j - 1) * 3 + 2]) end
    end
  end
  return out
end
for _, w in ipairs(writes) do
  if w[1] == 'r' then
    redis.call('SET', w[2], string.format('%.0f', w[3]), 'PX', w[4])
    redis.call('SET', w[5], string.format('%.0f', w[6]), 'PX', w[4])
  else
    redis.call('INCR', w[2])
    redis.call('PEXPIRE', w[2], w[4])
  end
end
-- When it took: a take the gateway stopped waiting for is given back (REFUND), in the windows it took from.
table.insert(out, now)
return out
`

/**
 * Beside a rate's TAT, the span (burst × interval, µs) it was stored under: instances whose configs
 * differ for a while (a rolling change) then read each other's TATs as a share of their own bucket.
 * A limit's name starts with a letter or digit, so no limit's key starts so.
 */
const SPAN_KEY = '~span|'

/**
 * Gives back what a TAKE took, for a take whose answer came after the gateway stopped waiting (the
 * request was let through uncounted or refused by on_error). Same keys and arguments as the take,
 * then the take's own time: a rate's theoretical arrival time moves back one interval, a quota's
 * count in the take's window goes down by one (a window already gone holds nothing to give back).
 */
const REFUND = `
local took = tonumber(ARGV[#ARGV])
for i = 1, #KEYS / 2 do
  local key = KEYS[i]
  local kind = ARGV[(i - 1) * 3 + 1]
  local a = tonumber(ARGV[(i - 1) * 3 + 2])
  local b = tonumber(ARGV[(i - 1) * 3 + 3])
  if kind == 'r' then
    local tat = tonumber(redis.call('GET', key) or '0')
    if tat > 0 then redis.call('SET', key, string.format('%.0f', tat - a), 'KEEPTTL') end
  else
    local wkey = key .. '@' .. string.format('%.0f', math.floor(took / b))
    if tonumber(redis.call('GET', wkey) or '0') > 0 then redis.call('DECR', wkey) end
  end
end
return 0
`

/**
 * Every instance's limits (agreement.ts), in one hash beside the buckets: a field per instance,
 * `<Redis time in ms> <limits as JSON>`. One script publishes this instance's, drops the fields not
 * refreshed within the TTL (an instance gone without a stop), and answers the others'. The hash
 * itself lives as long as the TTL past the last publication. Not a key per instance: finding those
 * would SCAN the whole keyspace, every bucket.
 */
const LIMITS_CONFIGS_KEY = '~limits-configs'

const SHARE_LIMITS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.0f', now) .. ' ' .. ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local space = string.find(all[i + 1], ' ', 1, true)
  local at = space and tonumber(string.sub(all[i + 1], 1, space - 1))
  if not at or now - at > ttl then
    redis.call('HDEL', KEYS[1], all[i])
  elseif all[i] ~= ARGV[1] then
    table.insert(out, all[i])
    table.insert(out, string.sub(all[i + 1], space + 1))
  end
end
return out
`

/** Another instance's published limits, or null when the field holds something else. */
function limitsFrom(text: string): LimitsDescription | null {
  try {
    const value = JSON.parse(text) as unknown
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return null
    return Object.values(value).every((v) => typeof v === 'string') ? (value as LimitsDescription) : null
  } catch {
    return null
  }
}

/**
 * A Redis that evicts keys under memory pressure (any maxmemory-policy but noeviction: every limit
 * key has a TTL, so volatile-* policies apply too) lets a flood of new keys push out a principal's
 * live quota, which resets it. With noeviction a full Redis fails the script instead, and on_error
 * decides. CONFIG may be disabled (managed Redis): then there is nothing to check.
 */
async function warnIfEvicting(client: RedisClient, logger: Logger): Promise<void> {
  try {
    const reply = (await client.config('GET', 'maxmemory-policy')) as string[]
    const policy = reply[1]
    if (policy !== undefined && policy !== 'noeviction') {
      logger.warn({ store: 'redis', maxmemory_policy: policy }, 'the limits Redis may evict live limit keys under memory pressure, which resets them: set maxmemory-policy noeviction')
    }
  } catch {
    // CONFIG is often renamed or refused on managed Redis.
  }
}

interface RedisWithTake extends RedisClient {
  bouncerTake(...args: Array<string | number>): Promise<number[]>
  bouncerRefund(...args: Array<string | number>): Promise<number>
  bouncerShareLimits(...args: Array<string | number>): Promise<string[]>
}

/** ioredis's own timeout, a backstop for a connection that neither answers nor closes: a late answer past it is not refunded. */
const BACKSTOP_MS = 30_000
/** The longest a reload waits for a new store's first connection (a Redis that neither answers nor refuses). */
const SETTLE_MS = 5_000
/**
 * A connection that has answered nothing this long while takes waited (each refused at its own
 * deadline) is dropped and made again. A Redis behind a proxy whose backend went, or a black-holed
 * address, keeps a connection open that answers nothing: limits stayed unavailable until ioredis's
 * 30 s backstop, ~30 s after Redis was back, and /readyz said ready throughout (a probe).
 */
const SILENT_MIN_MS = 1_000
/** Refunds kept while the client connects again (refund); more are given up, logged. Late answers come only from a connection's takes, so few. */
const MAX_WAITING_REFUNDS = 10_000

export interface RedisStoreOptions {
  url: string
  prefix: string
  timeoutMs: number
  logger: Logger
}

export function createRedisStore(options: RedisStoreOptions): LimitsStore {
  // Loaded only when configured: ioredis adds ~6 MB of heap to a gateway that never uses it.
  const { Redis } = createRequire(import.meta.url)('ioredis') as { Redis: typeof RedisClient }
  const connectTimeoutMs = Math.max(options.timeoutMs, 1_000)
  let state = 'connecting'
  let lastErrorLog = 0
  /**
   * Since the last READONLY, until a check is answered: the connections made again lead to a
   * replica still (no failover moved the address). Neither "ready" nor "connected" each time: a
   * store that stays a replica said ready on /readyz and logged "connected" ten times a second.
   */
  let readOnly = false
  /** A READONLY answer: said on /readyz and logged (every 10 s at most), and the connection made again. */
  const readOnlyAnswer = reconnectOnReadOnly((err) => {
    readOnly = true
    state = REPLICA_STATE
    if (Date.now() - lastErrorLog > 10_000) {
      lastErrorLog = Date.now()
      options.logger.warn({ store: 'redis', err }, 'the limits store is a read-only replica: connecting again, to wherever its address leads')
    }
  })
  const client = new Redis(options.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // The caller's deadline is take()'s own (see below); this one only releases a command whose
    // connection neither answers nor closes, so that nothing waits on it for ever.
    commandTimeout: Math.max(options.timeoutMs, BACKSTOP_MS),
    connectTimeout: connectTimeoutMs,
    enableAutoPipelining: false,
    // Its INFO waits for the backstop on a connection that answers nothing: a take that meets a
    // Redis still loading gets its LOADING error at once instead (on_error).
    enableReadyCheck: false,
    lazyConnect: false,
    // Reconnect for ever, every half second at most: limits are exact again within a second of
    // Redis returning (the cluster suite measures it), for one cheap refused connect per interval.
    retryStrategy: (times) => Math.min(times * 100, 500),
    // A primary demoted by a failover keeps its clients and answers every write READONLY: kept, the
    // connection met on_error for as long as it lived, while the address (a managed Redis's primary
    // endpoint, a DNS name) led new connections to the new primary (a probe). Made again instead.
    reconnectOnError: readOnlyAnswer,
  }) as RedisWithTake
  client.defineCommand('bouncerTake', { lua: TAKE })
  client.defineCommand('bouncerRefund', { lua: REFUND })
  client.defineCommand('bouncerShareLimits', { lua: SHARE_LIMITS, numberOfKeys: 1 })
  let connectedOnce = false
  let settling: Promise<void> | null = null
  /**
   * Whether the last check outlived its deadline on a connection that is up: a slow Redis (or a
   * slow link) answers every check late, each refused or let through by on_error, and /readyz
   * said "ready" throughout (probe finding). An answer in time clears it.
   */
  let lateChecks = false
  /**
   * Redis's own refusal of the last check (OOM under noeviction, MISCONF, NOAUTH, NOPERM), null once
   * one is answered: connected, it refused every check, each answered by on_error, and /readyz said
   * "ready" (a probe). Not a connection's failure (Redis away): that is the state's already.
   */
  let refusal: string | null = null
  client.on('ready', () => {
    if (!readOnly) ready()
    lateChecks = false
    if (!connectedOnce) {
      connectedOnce = true
      void warnIfEvicting(client, options.logger)
    }
  })
  function ready(): void {
    if (state !== 'ready') options.logger.info({ store: 'redis' }, 'limits store connected')
    state = 'ready'
    readOnly = false
  }
  client.on('error', (err: Error) => {
    state = `unavailable: ${err.message}`
    if (Date.now() - lastErrorLog > 10_000) {
      lastErrorLog = Date.now()
      options.logger.warn({ store: 'redis', err }, 'limits store unavailable')
    }
  })
  client.on('end', () => {
    state = 'closed'
  })
  client.on('close', () => {
    if (state === 'ready') state = 'unavailable: the connection closed (reconnecting)'
  })

  const silentMs = Math.max(SILENT_MIN_MS, 4 * options.timeoutMs)
  /** Since when takes have waited for an answer that did not come (null: the last one was answered). */
  let unansweredSince: number | null = null
  function answered(): void {
    unansweredSince = null
  }
  function unanswered(): void {
    if (unansweredSince === null || performance.now() - unansweredSince < silentMs || client.status !== 'ready') return
    unansweredSince = null
    state = `unavailable: no answer for ${silentMs} ms (reconnecting)`
    if (Date.now() - lastErrorLog > 10_000) {
      lastErrorLog = Date.now()
      options.logger.warn({ store: 'redis', silent_ms: silentMs }, 'limits store answers nothing: connecting again')
    }
    client.disconnect(true)
  }

  /**
   * Refunds waiting for a connection. A connection dropped as silent is only half closed: Redis,
   * waking, still runs the takes it had been sent and its answers arrive, late, while the client
   * connects again. Their refunds, sent then, failed (no offline queue): a 2.5 s stall charged a
   * caller 8 of a daily quota for 8 requests on_error refused (probe finding). Sent once one is ready.
   */
  const waitingRefunds: Array<{ args: Array<string | number>; took: number; tries: number }> = []
  function refund(args: Array<string | number>, took: number, tries = 0): void {
    if (client.status !== 'ready') {
      if (waitingRefunds.length < MAX_WAITING_REFUNDS) waitingRefunds.push({ args, took, tries })
      else options.logger.warn({ store: 'redis' }, 'a limit taken after its deadline could not be given back: too many refunds wait for the connection')
      return
    }
    client.bouncerRefund(...args, took).catch((err: unknown) => {
      // Not a refusal of Redis's own: the connection is going (a dropped one says "ready" until it
      // has closed), so the refund waits for the next one.
      if ((err as Error).name !== 'ReplyError' && tries < 3 && waitingRefunds.length < MAX_WAITING_REFUNDS) waitingRefunds.push({ args, took, tries: tries + 1 })
      else options.logger.warn({ store: 'redis', err }, 'a limit taken after its deadline could not be given back')
    })
  }
  client.on('ready', () => {
    for (const waiting of waitingRefunds.splice(0)) refund(waiting.args, waiting.took, waiting.tries)
  })

  /**
   * First connected, or closed, or the connect timeout (at most SETTLE_MS) over. Not the first
   * error: the client retries within 100 ms, and a reset or a slow first answer from a Redis that
   * is there would otherwise swap the runtime in before it connects. A Redis that is down costs
   * the wait.
   */
  function settled(): Promise<void> {
    // A store a reload keeps (it connected once) never waits, whatever Redis is doing now.
    if (connectedOnce || client.status === 'end') return Promise.resolve()
    settling ??= new Promise<void>((done) => {
      const finish = () => {
        clearTimeout(timer)
        client.off('ready', finish)
        client.off('end', finish)
        done()
      }
      const timer = setTimeout(finish, Math.min(connectTimeoutMs, SETTLE_MS))
      client.once('ready', finish)
      client.once('end', finish)
    })
    return settling
  }

  return {
    kind: 'redis',
    settled,
    async take(checks: readonly Check[]): Promise<TakeResult> {
      const args: Array<string | number> = [checks.length * 2]
      for (const check of checks) args.push(options.prefix + check.key)
      for (const check of checks) args.push(options.prefix + SPAN_KEY + check.key)
      for (const check of checks) {
        if (check.rate) args.push('r', check.rate.intervalUs ?? Math.round(check.rate.intervalMs * 1000), check.rate.burst)
        else if (check.quota) args.push('q', check.quota.count, check.quota.periodMs * 1000)
      }
      // A take is not withdrawn by giving up on it: Redis runs it when it reaches it (a slow or
      // paused Redis) and would count a request that on_error let through uncounted or refused.
      // So a late answer that took is given back, on the same connection.
      unansweredSince ??= performance.now()
      let reply: number[]
      try {
        reply = await withinDeadline(client.bouncerTake(...args), options.timeoutMs, 'the limits store', (late) => {
          answered()
          if (late[0] === 0) refund(args, late[late.length - 1] as number)
        })
      } catch (err) {
        if (err instanceof DeadlineExceeded) {
          lateChecks = true
          unanswered()
        } else {
          // Refused at once (Redis down, or full): not silence. Left running from the outage, the
          // silence clock dropped the fresh connection at its first late check after Redis returned (probe).
          answered()
          if ((err as Error).name === 'ReplyError') refusal = (err as Error).message
        }
        throw err
      }
      lateChecks = false
      refusal = null
      answered()
      if (readOnly) ready()
      const refused = (reply[0] as number) - 1
      const states: CheckState[] = []
      for (let i = 0; i < checks.length; i++) {
        states.push({ remaining: reply[2 + 2 * i] as number, resetMs: (reply[3 + 2 * i] as number) / 1000 })
      }
      // Keys expire by their TTL in Redis (maxmemory-policy should be noeviction: see README).
      return { refused, reason: 'limit', retryAfterMs: refused === -1 ? 0 : (reply[1] as number) / 1000, states }
    },
    async shareLimits(instance, limits, ttlMs) {
      const reply = await withinDeadline(client.bouncerShareLimits(options.prefix + LIMITS_CONFIGS_KEY, instance, JSON.stringify(limits), ttlMs), options.timeoutMs, 'the limits store', () => {})
      const others = new Map<string, LimitsDescription>()
      for (let i = 0; i + 1 < reply.length; i += 2) {
        const described = limitsFrom(reply[i + 1] as string)
        if (described) others.set(reply[i] as string, described)
      }
      return others
    },
    async withdrawLimits(instance) {
      await withinDeadline(client.hdel(options.prefix + LIMITS_CONFIGS_KEY, instance), options.timeoutMs, 'the limits store', () => {})
    },
    status() {
      if (state !== 'ready') return state
      if (lateChecks) return `ready, but slow: checks take longer than limits_store.timeout (${options.timeoutMs} ms), so on_error answers them`
      return refusal === null ? state : `ready, but refusing checks: ${refusal} (on_error answers them)`
    },
    answeredOnce: () => connectedOnce,
    async close() {
      client.disconnect()
    },
  }
}
