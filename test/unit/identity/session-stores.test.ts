// The three session stores, each on the real thing (a SQLite file, the Redis of the session), held to one contract.
// Found by an adversarial probe (helper): a refresh wrote its session back with put, an upsert in all three stores, so a session revoked or signed out during the refresh came back; update writes only a session that still exists.
// Found by the limits probe (helper): one person signing in again and again filled the SQLite file or Redis (the memory store alone had a cap): each store now ends the person's oldest past SESSIONS_PER_PERSON.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SessionRecord, SessionStore } from '../../../src/identity/index.ts'
import { SESSIONS_PER_PERSON } from '../../../src/identity/sessions/store.ts'
import { openMemorySessionStore } from '../../../src/identity/sessions/memory-store.ts'
import { openRedisSessionStore } from '../../../src/identity/sessions/redis-store.ts'
import { openSqliteSessionStore } from '../../../src/identity/sessions/sqlite-store.ts'
import { uniquePrefix } from '../../helpers/redis.ts'

const HOUR = 3_600_000
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-session-update-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

function record(id: string, claims: Record<string, unknown>, subject = 'ann', now = Date.now()): SessionRecord {
  return { id, issuer: 'sso', subject, claims: { sub: subject, ...claims }, createdAt: now, lastSeenAt: now, expiresAt: now + HOUR, refreshAt: null, sealed: null, audience: 'gateway' }
}

const stores: [string, () => { store: SessionStore; cleanUp?: () => Promise<void> }][] = [
  ['memory', () => ({ store: openMemorySessionStore(HOUR) })],
  ['sqlite', () => ({ store: openSqliteSessionStore(join(dir, `${Math.random().toString(36).slice(2)}.db`), HOUR) })],
  ['redis', () => {
    const prefix = uniquePrefix('session-update')
    return {
      store: openRedisSessionStore({ url: 'redis://127.0.0.1:6379', prefix, timeoutMs: 2_000, idleMs: HOUR, logger: null }),
      async cleanUp() {
        const raw = new Redis('redis://127.0.0.1:6379')
        const keys = await raw.keys(`${prefix}*`)
        if (keys.length > 0) await raw.del(...keys)
        raw.disconnect()
      },
    }
  }],
]

describe.each(stores)('the %s session store', (_, open) => {
  it('rewrites a session that exists, and never brings back one that ended', async () => {
    const { store, cleanUp } = open()
    try {
      const id = 'e'.repeat(32)
      await store.put(record(id, { groups: ['old'] }))
      expect(await store.update(record(id, { groups: ['new'] }))).toBe(true)
      expect((await store.get(id))?.claims).toMatchObject({ groups: ['new'] })

      expect(await store.delete(id)).toBe(true)
      expect(await store.update(record(id, { groups: ['newer'] }))).toBe(false)
      expect(await store.get(id)).toBeUndefined()
      expect((await store.list(Date.now())).map((r) => r.id)).not.toContain(id)
    } finally {
      await cleanUp?.()
      await store.close()
    }
  })

  it('gives a refresh claim to one taker until it lapses, and each refresh its own claim', async () => {
    const { store, cleanUp } = open()
    try {
      const now = Date.now()
      const claim = `${'c'.repeat(32)}@${now}`
      expect(await store.claimRefresh(claim, now + 5_000, now)).toBe(true)
      expect(await store.claimRefresh(claim, now + 5_000, now)).toBe(false) // another worker, or gateway
      expect(await store.claimRefresh(`${'c'.repeat(32)}@${now + 60_000}`, now + 5_000, now)).toBe(true) // the next refresh of the session
      // A holder that stopped without finishing: past its claim, another takes it.
      await new Promise((resolve) => setTimeout(resolve, 30))
      const short = `${'d'.repeat(32)}@${now}`
      const lapsed = Date.now() + 20
      expect(await store.claimRefresh(short, lapsed, Date.now())).toBe(true)
      await new Promise((resolve) => setTimeout(resolve, 40))
      const taken = Date.now() + 5_000
      expect(await store.claimRefresh(short, taken, Date.now())).toBe(true)
      // The first holder, slower than its claim, fails late: letting go frees only its own claim, not the one taken since.
      await store.releaseRefresh(short, lapsed)
      expect(await store.claimRefresh(short, Date.now() + 5_000, Date.now())).toBe(false)
      // Let go once its refresh has failed: the next taker need not wait for it to lapse.
      await store.releaseRefresh(short, taken)
      expect(await store.claimRefresh(short, Date.now() + 5_000, Date.now())).toBe(true)
    } finally {
      await cleanUp?.()
      await store.close()
    }
  })

  it(`holds at most ${SESSIONS_PER_PERSON} sessions a person: a sign-in past that ends the person's oldest, and no one else's`, async () => {
    const { store, cleanUp } = open()
    try {
      const start = Date.now()
      const id = (n: number) => n.toString(16).padStart(32, '0')
      await store.put(record('b'.repeat(32), {}, 'bob', start))
      for (let n = 0; n < SESSIONS_PER_PERSON; n++) await store.put(record(id(n), {}, 'ann', start + n))
      // A session that ended (signed out) does not count: the next sign-in ends none.
      expect(await store.delete(id(5))).toBe(true)
      await store.put(record(id(SESSIONS_PER_PERSON), {}, 'ann', start + SESSIONS_PER_PERSON))
      expect(await store.get(id(0))).toBeDefined()
      // Past the cap, the oldest ends.
      await store.put(record(id(SESSIONS_PER_PERSON + 1), {}, 'ann', start + SESSIONS_PER_PERSON + 1))
      expect(await store.get(id(0))).toBeUndefined()
      expect(await store.get(id(1))).toBeDefined()
      const live = await store.list(Date.now())
      expect(live.filter((r) => r.subject === 'ann')).toHaveLength(SESSIONS_PER_PERSON)
      expect(live.filter((r) => r.subject === 'bob').map((r) => r.id)).toEqual(['b'.repeat(32)])
    } finally {
      await cleanUp?.()
      await store.close()
    }
  })
})
