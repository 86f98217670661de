// Sessions in Redis: several gateway instances share them. Each session is a hash (`data`: the
// record as JSON; `seen`: the last use; `until`: its idle end, written with it) that expires with the session's absolute end, so Redis
// drops it by itself; every request reads it (one round trip), so a sign-out or a revocation on
// any instance is seen by every instance at the next request. Besides sessions, one key: the
// sign-in state cookies' (`k:sign-in`, no expiry), set by the first instance that needs it.
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import type { Redis as RedisClient } from 'ioredis'
import { createLru, reconnectOnReadOnly, REPLICA_STATE, withinDeadline } from '../../collections/index.ts'
import type { Logger } from '../../telemetry/index.ts'
import { IdleTimeout, SessionStoreError, SESSIONS_PER_PERSON, type SessionRecord, type SessionStore } from './store.ts'

/** A use is recorded only on a session that still exists: a revoked one is not brought back as an empty hash. */
const TOUCH = `if redis.call('EXISTS', KEYS[1]) == 1 then
  local seen = tonumber(redis.call('HGET', KEYS[1], 'seen') or '0')
  if seen < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'seen', ARGV[1], 'until', ARGV[2]) end
  return 1
end
return 0`

/** A refresh claim deleted only while it is still the releasing holder's (its value is the holder's `until`). */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

/** A session rewritten only while it exists (a refresh): one revoked meanwhile is not brought back. Keeps the later use. */
const UPDATE = `if redis.call('EXISTS', KEYS[1]) == 1 then
  local seen = tonumber(redis.call('HGET', KEYS[1], 'seen') or '0')
  redis.call('HSET', KEYS[1], 'data', ARGV[1])
  if seen < tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[1], 'seen', ARGV[2])
    if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'until', ARGV[4]) end
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0`

/**
 * A sign-in's session, and its id in its person's set (by creation time). Past SESSIONS_PER_PERSON,
 * ids whose session has gone (expired, signed out, revoked) leave the set, then the oldest sessions
 * end. The set lives as long as the person's longest session. It reads session keys it is not given
 * (their names come from the set): a standalone Redis, as the store's client is.
 */
const PUT = `redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'seen', ARGV[2])
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'until', ARGV[8]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
local cap = tonumber(ARGV[6])
if redis.call('ZCARD', KEYS[2]) <= cap then return 0 end
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if redis.call('EXISTS', ARGV[7] .. id) == 0 then redis.call('ZREM', KEYS[2], id) end
end
local ended = 0
local over = redis.call('ZCARD', KEYS[2]) - cap
if over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, over - 1)) do
    redis.call('DEL', ARGV[7] .. id)
    redis.call('ZREM', KEYS[2], id)
    ended = ended + 1
  end
end
return ended`

/** The sign-in key: the one already there, else the one offered (two instances starting together agree). */
const SIGN_IN_KEY = `redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])`

/** ioredis's own timeout, a backstop for a connection that neither answers nor closes; callers wait `timeoutMs` (guard). */
const BACKSTOP_MS = 30_000

export interface RedisSessionStoreOptions {
  url: string
  prefix: string
  timeoutMs: number
  /** sign_in.session.idle: what `list` goes by (Redis keeps an idle-ended session's key to its absolute end). */
  idleMs: number
  logger: Logger | null
}

export function openRedisSessionStore(options: RedisSessionStoreOptions): SessionStore {
  // Loaded only when configured, as the limits store does.
  const { Redis } = createRequire(import.meta.url)('ioredis') as { Redis: typeof RedisClient }
  let lastErrorLog = 0
  // For /readyz (store.ts, status): every session request waits on Redis, so an outage is named there.
  let state = 'connecting'
  /**
   * Since the last READONLY, until a write is answered: the connections made again lead to a
   * replica still (no failover moved the address), and /readyz says so rather than "ready".
   */
  let readOnly = false
  /** A READONLY answer: said on /readyz and logged (every 10 s at most), and the connection made again. */
  const readOnlyAnswer = reconnectOnReadOnly((err) => {
    readOnly = true
    state = REPLICA_STATE
    if (Date.now() - lastErrorLog > 10_000) {
      lastErrorLog = Date.now()
      options.logger?.warn({ store: 'redis', err }, 'the session store is a read-only replica: connecting again, to wherever its address leads')
    }
  })
  const client = new Redis(options.url, {
    maxRetriesPerRequest: 1,
    commandTimeout: Math.max(options.timeoutMs, BACKSTOP_MS),
    connectTimeout: Math.max(options.timeoutMs, 1_000),
    lazyConnect: false,
    retryStrategy: (times) => Math.min(times * 100, 2_000),
    // A primary demoted by a failover keeps its clients and answers every write READONLY: kept, every
    // sign-in, refresh and recorded use failed for as long as the connection lived, while the address
    // (a managed Redis's primary endpoint, a DNS name) led new connections to the new primary. Made
    // again instead, as the limits store's is. Not sent again: a replica would answer it the same.
    reconnectOnError: readOnlyAnswer,
  })
  const idle = new IdleTimeout(options.idleMs)
  let connectedOnce = false
  client.on('ready', () => {
    if (!readOnly) state = 'ready'
    connectedOnce = true
  })
  client.on('close', () => {
    if (state === 'ready') state = 'unavailable: the connection closed (reconnecting)'
  })
  client.on('error', (err: Error) => {
    state = `unavailable: ${err.message}`
    if (Date.now() - lastErrorLog > 10_000) {
      lastErrorLog = Date.now()
      options.logger?.warn({ store: 'redis', err }, 'session store unavailable')
    }
  })
  // The record last parsed per session, by its JSON: an unchanged session is not parsed again, and
  // stays the same object (its identity is built once). Redis is still asked every time.
  const parsed = createLru<{ data: string; record: SessionRecord }>(10_000)
  const sessionKey = (id: string) => `${options.prefix}s:${id}`
  /** A person's session ids; issuer and subject encoded, so no two people share a key. */
  const personKey = (record: SessionRecord) => `${options.prefix}p:${encodeURIComponent(record.issuer)}:${encodeURIComponent(record.subject)}`
  const signInKeyName = `${options.prefix}k:sign-in`
  const refreshClaim = (id: string) => `${options.prefix}r:${id}`
  const url = new URL(options.url)
  const location = `${url.protocol}//${url.host} ${options.prefix}`

  /**
   * The work's answer within the store's timeout, its failures as SessionStoreError. A command
   * given up on still runs when Redis reaches it, and is as good late as on time (a use recorded,
   * a session stored or ended). The scan behind `list` has no deadline in all (it reads every
   * session), but each of its commands has the store's (step).
   */
  async function guard<T>(work: () => Promise<T>, deadline = true): Promise<T> {
    try {
      return await (deadline ? withinDeadline(work(), options.timeoutMs, 'the session store', () => {}) : work())
    } catch (err) {
      // ioredis gives up on a command with "Reached the max retries per request limit": the
      // connection's own error (ECONNREFUSED, a DNS failure, NOAUTH) is what tells an operator why.
      const connection = state.startsWith('unavailable: ') && state !== `unavailable: ${(err as Error).message}` ? ` (the connection: ${state.slice('unavailable: '.length)})` : ''
      throw new SessionStoreError(`the session store (Redis ${url.host}) failed: ${(err as Error).message}${connection}`, { cause: err })
    }
  }

  /** A write: one answered shows the store is a primary again (a replica answers reads too). */
  async function write<T>(work: () => Promise<T>): Promise<T> {
    const answer = await guard(work)
    if (readOnly) {
      readOnly = false
      state = 'ready'
    }
    return answer
  }

  function parse(id: string, data: string | null, seen: string | null, until: string | null): SessionRecord | undefined {
    if (data === null) return undefined
    let record: SessionRecord
    const known = parsed.get(id, Date.now())
    if (known?.data === data) record = known.record
    else {
      const stored = JSON.parse(data) as SessionRecord
      // Written before sessions named their sign-in: the gateway's (store.ts, SessionAudience).
      record = stored.audience === undefined ? { ...stored, audience: 'gateway' } : stored
      parsed.set(id, { data, record }, record.expiresAt)
    }
    const lastSeenAt = Math.max(record.lastSeenAt, Number(seen ?? 0))
    if (lastSeenAt === record.lastSeenAt) return record
    // A use recorded since `data` was written, with its idle end: none where an older gateway recorded it.
    return { ...record, lastSeenAt, idleUntil: until === null ? undefined : Number(until) }
  }

  return {
    kind: 'redis',
    location,
    get(id) {
      return guard(async () => {
        const [data, seen, until] = await client.hmget(sessionKey(id), 'data', 'seen', 'until')
        return parse(id, data ?? null, seen ?? null, until ?? null)
      })
    },
    put(record) {
      return write(async () => {
        const ttl = Math.max(1, record.expiresAt - Date.now())
        await client.eval(PUT, 2, sessionKey(record.id), personKey(record), JSON.stringify(record), String(record.lastSeenAt), String(ttl), record.id, String(record.createdAt), String(SESSIONS_PER_PERSON), `${options.prefix}s:`, record.idleUntil === undefined ? '' : String(record.idleUntil))
      })
    },
    update(record) {
      return write(async () => {
        const ttl = Math.max(1, record.expiresAt - Date.now())
        return (await client.eval(UPDATE, 1, sessionKey(record.id), JSON.stringify(record), String(record.lastSeenAt), String(ttl), record.idleUntil === undefined ? '' : String(record.idleUntil))) === 1
      })
    },
    claimRefresh(id, until, now) {
      return write(async () => (await client.set(refreshClaim(id), String(until), 'PX', Math.max(1, until - now), 'NX')) === 'OK')
    },
    releaseRefresh(claim, until) {
      return write(async () => {
        await client.eval(RELEASE, 1, refreshClaim(claim), String(until))
      })
    },
    touch(id, at) {
      return write(async () => {
        await client.eval(TOUCH, 1, sessionKey(id), String(at), String(at + idle.ms))
      })
    },
    delete(id) {
      return write(async () => (await client.del(sessionKey(id))) > 0)
    },
    list(now) {
      // Each command within the store's timeout: a Redis that took the connection and never answered
      // held `bouncer sessions list` for ioredis's 30 s backstop (found by an adversarial probe).
      const step = <T>(command: Promise<T>) => withinDeadline(command, options.timeoutMs, 'the session store', () => {})
      return guard(async () => {
        const keys: string[] = []
        let cursor = '0'
        do {
          const [next, batch] = await step(client.scan(cursor, 'MATCH', `${options.prefix}s:*`, 'COUNT', 500))
          cursor = next
          keys.push(...batch)
        } while (cursor !== '0')
        const records: SessionRecord[] = []
        for (const key of keys) {
          const [data, seen, until] = await step(client.hmget(key, 'data', 'seen', 'until'))
          const record = parse(key.slice(options.prefix.length + 2), data ?? null, seen ?? null, until ?? null)
          if (record && record.expiresAt > now && !idle.ended(record, now)) records.push(record)
        }
        return records.sort((a, b) => b.createdAt - a.createdAt)
      }, false)
    },
    signInKey() {
      return write(async () => Buffer.from((await client.eval(SIGN_IN_KEY, 1, signInKeyName, randomBytes(32).toString('base64url'))) as string, 'base64url'))
    },
    status: () => state,
    answeredOnce: () => connectedOnce,
    // Nothing to sweep: Redis drops a session at its absolute end, and every read checks the idle timeout.
    idle,
    async close() {
      state = 'closed'
      client.disconnect()
    },
  }
}
