// Stores written before sessions named their sign-in (store.ts, SessionAudience): their sessions
// read as the gateway's, and the stores keep the audience of every session written since. Real
// SQLite files and the machine's Redis (127.0.0.1:6379, a key prefix of its own).
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
  dir = await mkdtemp(join(tmpdir(), 'bouncer-session-stores-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

function record(id: string, audience: SessionRecord['audience']): SessionRecord {
  const now = Date.now()
  return { id, issuer: 'sso', subject: `${audience}-person`, claims: { sub: `${audience}-person` }, createdAt: now, lastSeenAt: now, expiresAt: now + HOUR, refreshAt: null, sealed: null, audience }
}

describe('the SQLite session store', () => {
  it('upgrades a file from before audiences: its sessions are the gateway\'s, new ones keep theirs', async () => {
    const path = join(dir, 'old-sessions.db')
    const old = new DatabaseSync(path)
    // The schema as it was (no audience column), with one session in it.
    old.exec(`CREATE TABLE sessions (
      id TEXT PRIMARY KEY, issuer TEXT NOT NULL, subject TEXT NOT NULL, claims TEXT NOT NULL,
      created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
      refresh_at INTEGER, sealed TEXT)`)
    const now = Date.now()
    old.prepare('INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run('a'.repeat(32), 'sso', 'ann', '{"sub":"ann"}', now, now, now + HOUR, null, null)
    old.close()

    const store = openSqliteSessionStore(path, HOUR)
    expect(store.get('a'.repeat(32))).toMatchObject({ subject: 'ann', audience: 'gateway' })
    await store.put(record('b'.repeat(32), 'console'))
    await store.close()

    const reopened = openSqliteSessionStore(path, HOUR)
    expect(reopened.get('b'.repeat(32))).toMatchObject({ audience: 'console' })
    expect((await reopened.list(Date.now())).map((r) => [r.subject, r.audience])).toEqual(expect.arrayContaining([['ann', 'gateway'], ['console-person', 'console']]))
    await reopened.close()
  })
})

describe('the Redis session store', () => {
  it('reads a session written before audiences as the gateway\'s, and keeps a console session\'s', async () => {
    const prefix = uniquePrefix('session-audience')
    const raw = new Redis('redis://127.0.0.1:6379')
    const store = openRedisSessionStore({ url: 'redis://127.0.0.1:6379', prefix, timeoutMs: 2_000, idleMs: HOUR, logger: null })
    try {
      const { audience: _, ...before } = record('c'.repeat(32), 'gateway')
      await raw.hset(`${prefix}s:${'c'.repeat(32)}`, 'data', JSON.stringify(before), 'seen', String(before.lastSeenAt))
      expect(await store.get('c'.repeat(32))).toMatchObject({ audience: 'gateway' })
      await store.put(record('d'.repeat(32), 'console'))
      expect(await store.get('d'.repeat(32))).toMatchObject({ audience: 'console' })
    } finally {
      const keys = await raw.keys(`${prefix}*`)
      if (keys.length > 0) await raw.del(...keys)
      raw.disconnect()
      await store.close()
    }
  })
})
