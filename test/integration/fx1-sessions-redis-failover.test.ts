// Found by the limits probe (limfa2) for the limits store, confirmed for the sessions store: a
// Redis session store behind an address a failover moves (a managed Redis's primary endpoint, a
// DNS name, a VIP). Redis keeps its clients connected when it is demoted to a replica and answers
// every write READONLY: every sign-in, refresh and recorded use failed for as long as the old
// connection lived, while the new primary at the same address was fine. A READONLY answer now drops
// the connection and makes it again; where the address still leads to a replica, status() says so.
import { Writable } from 'node:stream'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { SessionRecord } from '../../src/identity/index.ts'
import { openRedisSessionStore } from '../../src/identity/sessions/redis-store.ts'
import { createLogger } from '../../src/telemetry/logger.ts'
import { startFreezingRelay, type FreezingRelay } from '../helpers/faults.ts'
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts'
import { waitFor } from '../helpers/wait.ts'

const HOUR = 3_600_000
let first: TestRedis
let second: TestRedis
let relay: FreezingRelay

beforeAll(async () => {
  first = await startRedis()
  second = await startRedis()
  relay = await startFreezingRelay(first.port)
}, 30_000)

afterAll(async () => {
  relay?.close()
  await first?.stop()
  await second?.stop()
})

function record(id: string, now = Date.now()): SessionRecord {
  return { id, issuer: 'sso', subject: 'ann', claims: { sub: 'ann' }, createdAt: now, lastSeenAt: now, expiresAt: now + HOUR, refreshAt: null, sealed: null, audience: 'gateway' }
}

function logger(lines: string[]) {
  return createLogger({ level: 'info', destination: new Writable({ write(chunk: Buffer, _e, done) { lines.push(chunk.toString()); done() } }) })
}

it('sessions are written again once the address leads to the new primary', async () => {
  const store = openRedisSessionStore({ url: `redis://127.0.0.1:${relay.port}`, prefix: uniquePrefix('fx1-failover'), timeoutMs: 500, idleMs: HOUR, logger: null })
  try {
    await store.put(record('a'.repeat(32)))
    // The failover: the old primary becomes a replica of the new one (its clients stay connected), and the address moves.
    const admin = new Redis(first.url, { maxRetriesPerRequest: 0 })
    try {
      await admin.call('REPLICAOF', '127.0.0.1', String(second.port))
    } finally {
      admin.disconnect()
    }
    relay.retarget(second.port)
    const seen: string[] = []
    await waitFor(async () => {
      try {
        await store.put(record('b'.repeat(32)))
        seen.push('ok')
        return true
      } catch (err) {
        seen.push((err as Error).message)
        return false
      }
    }, 'a session written after the failover', 5_000).catch(() => {})
    expect(seen.at(-1), `writes after the failover: ${seen.join(' | ')}`).toBe('ok')
    expect((await store.get('b'.repeat(32)))?.subject).toBe('ann')
    expect(store.status()).toBe('ready')
  } finally {
    await store.close()
  }
})

it('a store that stays a replica is said so', async () => {
  // `first` is the replica now; a store whose URL names it.
  const lines: string[] = []
  const store = openRedisSessionStore({ url: first.url, prefix: uniquePrefix('fx1-replica'), timeoutMs: 500, idleMs: HOUR, logger: logger(lines) })
  try {
    await waitFor(async () => {
      await expect(store.put(record('c'.repeat(32)))).rejects.toThrow(/READONLY/)
      return /READONLY/.test(store.status())
    }, 'the status naming the replica', 5_000)
    expect(lines.filter((line) => line.includes('read-only replica')).length).toBe(1)
  } finally {
    await store.close()
  }
})
