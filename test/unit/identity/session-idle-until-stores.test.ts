// Each session keeps its idle end (store.ts, IdleTimeout: idleUntil), written with every use, so a
// gateway that opens the store after a reload lengthened session.idle (a restart, another instance)
// still refuses a session that had ended under the shorter timeout (an adversarial probe found a
// longer idle bringing such sessions back). Stores written before it was kept: SQLite files gain
// the column, Redis hashes without it read as before, and a use writes it. Real SQLite files and
// the machine's Redis (127.0.0.1:6379, a key prefix of its own).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openRedisSessionStore } from '../../../src/identity/sessions/redis-store.ts'
import { openSqliteSessionStore } from '../../../src/identity/sessions/sqlite-store.ts'
import type { SessionRecord } from '../../../src/identity/index.ts'
import { uniquePrefix } from '../../helpers/redis.ts'

const HOUR = 3_600_000
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-session-idle-until-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Last used two hours ago under a 1h idle timeout: ended an hour ago, within its absolute end. */
function endedAnHourAgo(id: string, now: number): SessionRecord {
  const lastSeenAt = now - 2 * HOUR
  return { id, issuer: 'sso', subject: 'ben', claims: { sub: 'ben' }, createdAt: lastSeenAt, lastSeenAt, idleUntil: lastSeenAt + HOUR, expiresAt: now + HOUR, refreshAt: null, sealed: null, audience: 'gateway' }
}

describe('the SQLite session store', () => {
  it('adds idle_until to a file from before it, writes it with a use, and a store opened later with a longer idle refuses what had ended', async () => {
    const path = join(dir, 'old-sessions.db')
    const old = new DatabaseSync(path)
    old.exec(`CREATE TABLE sessions (
      id TEXT PRIMARY KEY, issuer TEXT NOT NULL, subject TEXT NOT NULL, claims TEXT NOT NULL,
      created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
      refresh_at INTEGER, sealed TEXT, audience TEXT NOT NULL DEFAULT 'gateway')`)
    const now = Date.now()
    old.prepare('INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run('a'.repeat(32), 'sso', 'ann', '{"sub":"ann"}', now, now, now + HOUR, null, null, 'gateway')
    old.close()

    const store = openSqliteSessionStore(path, HOUR)
    const ann = store.get('a'.repeat(32)) as SessionRecord
    expect(ann).toMatchObject({ subject: 'ann' })
    expect(ann.idleUntil).toBeUndefined()
    await store.touch('a'.repeat(32), now + 1_000)
    expect(store.get('a'.repeat(32))).toMatchObject({ lastSeenAt: now + 1_000, idleUntil: now + 1_000 + HOUR })
    // A refresh's rewrite keeps the later use and its idle end.
    expect(await store.update({ ...ann, claims: { sub: 'ann', groups: ['new'] } })).toBe(true)
    await store.put(endedAnHourAgo('b'.repeat(32), now))
    await store.close()

    const longer = openSqliteSessionStore(path, 3 * HOUR)
    try {
      expect(longer.get('a'.repeat(32))).toMatchObject({ lastSeenAt: now + 1_000, idleUntil: now + 1_000 + HOUR, claims: { groups: ['new'] } })
      const ben = longer.get('b'.repeat(32)) as SessionRecord
      expect(longer.idle.ended(ben, Date.now())).toBe(true)
      expect((await longer.list(Date.now())).map((r) => r.subject)).toEqual(['ann'])
    } finally {
      await longer.close()
    }
  })
})

describe('the Redis session store', () => {
  it('reads a session written before idle ends were kept, writes one with a use, and a store opened later with a longer idle refuses what had ended', async () => {
    const prefix = uniquePrefix('session-idle-until')
    const raw = new Redis('redis://127.0.0.1:6379')
    const store = openRedisSessionStore({ url: 'redis://127.0.0.1:6379', prefix, timeoutMs: 2_000, idleMs: HOUR, logger: null })
    let longer: ReturnType<typeof openRedisSessionStore> | undefined
    try {
      const now = Date.now()
      const before = { id: 'c'.repeat(32), issuer: 'sso', subject: 'cat', claims: { sub: 'cat' }, createdAt: now, lastSeenAt: now, expiresAt: now + HOUR, refreshAt: null, sealed: null, audience: 'gateway' }
      await raw.hset(`${prefix}s:${'c'.repeat(32)}`, 'data', JSON.stringify(before), 'seen', String(now))
      expect((await store.get('c'.repeat(32)))?.idleUntil).toBeUndefined()
      await store.touch('c'.repeat(32), now + 1_000)
      expect(await store.get('c'.repeat(32))).toMatchObject({ lastSeenAt: now + 1_000, idleUntil: now + 1_000 + HOUR })
      await store.put(endedAnHourAgo('d'.repeat(32), now))

      longer = openRedisSessionStore({ url: 'redis://127.0.0.1:6379', prefix, timeoutMs: 2_000, idleMs: 3 * HOUR, logger: null })
      const ben = (await longer.get('d'.repeat(32)))!
      expect(ben.idleUntil).toBe(ben.lastSeenAt + HOUR)
      expect(longer.idle.ended(ben, Date.now())).toBe(true)
      expect((await longer.list(Date.now())).map((r) => r.subject)).toEqual(['cat'])
    } finally {
      const keys = await raw.keys(`${prefix}*`)
      if (keys.length > 0) await raw.del(...keys)
      raw.disconnect()
      await store.close()
      await longer?.close()
    }
  })
})
