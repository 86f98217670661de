// Found by an adversarial probe (helper): a refresh wrote its session back with put, an upsert in all three stores, so a session revoked or signed out during the refresh came back; update writes only a session that still exists.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SessionRecord, SessionStore } from '../../../src/identity/index.ts'
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

function record(id: string, claims: Record<string, unknown>): SessionRecord {
  const now = Date.now()
  return { id, issuer: 'sso', subject: 'ann', claims: { sub: 'ann', ...claims }, createdAt: now, lastSeenAt: now, expiresAt: now + HOUR, refreshAt: null, sealed: null, audience: 'gateway' }
}

const stores: [string, () => { store: SessionStore; cleanUp?: () => Promise<void> }][] = [
  ['memory', () => ({ store: openMemorySessionStore(HOUR) })],
  ['sqlite', () => ({ store: openSqliteSessionStore(join(dir, `${Math.random().toString(36).slice(2)}.db`), HOUR) })],
  ['redis', () => {
    const prefix = uniquePrefix('session-update')
    return {
      store: openRedisSessionStore({ url: 'redis://127.0.0.1:6379', prefix, timeoutMs: 2_000, logger: null }),
      async cleanUp() {
        const raw = new Redis('redis://127.0.0.1:6379')
        const keys = await raw.keys(`${prefix}*`)
        if (keys.length > 0) await raw.del(...keys)
        raw.disconnect()
      },
    }
  }],
]

describe.each(stores)('the %s session store\'s update', (_, open) => {
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
})
