// The memory session store had a bound per person (SESSIONS_PER_PERSON) but none in all: each
// sign-in of another person (a provider where anyone makes accounts) was one more record in the
// gateway's heap until its idle timeout. Now it keeps at most MEMORY_SESSIONS sessions and
// MEMORY_SESSION_BYTES of them, ending the least recently used, and logs once per filling.
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import type { SessionRecord } from '../../../src/identity/index.ts'
import { MEMORY_SESSIONS, openMemorySessionStore } from '../../../src/identity/sessions/memory-store.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

const HOUR = 3_600_000

function session(n: number, claims: Record<string, unknown> = {}, now = Date.now()): SessionRecord {
  const subject = `person-${n}`
  return { id: n.toString(16).padStart(32, '0'), issuer: 'sso', subject, claims: { sub: subject, ...claims }, createdAt: now, lastSeenAt: now, expiresAt: now + 8 * HOUR, refreshAt: null, sealed: null, audience: 'gateway' }
}

function logsTo(lines: string[]) {
  return createLogger({ level: 'warn', destination: new Writable({ write(chunk: Buffer, _e, done) { lines.push(chunk.toString()); done() } }) })
}

describe('the memory session store, full', () => {
  it('keeps 50,000 sessions at most: a 50,001st person signing in ends the oldest, and the newest is found', async () => {
    const store = openMemorySessionStore(HOUR)
    try {
      for (let n = 1; n <= MEMORY_SESSIONS + 1; n++) await store.put(session(n))
      expect(await store.get(session(1).id)).toBeUndefined()
      expect(await store.get(session(2).id)).toBeDefined()
      expect((await store.get(session(MEMORY_SESSIONS + 1).id))?.subject).toBe(`person-${MEMORY_SESSIONS + 1}`)
      expect(MEMORY_SESSIONS).toBe(50_000)
      expect(await store.list(Date.now())).toHaveLength(MEMORY_SESSIONS)
    } finally {
      await store.close()
    }
  })

  it('keeps 64 MiB of sessions at most: sessions with large ID tokens (many groups) end sooner', async () => {
    const store = openMemorySessionStore(HOUR)
    try {
      const groups = Array.from({ length: 1_600 }, (_, i) => `group-${String(i).padStart(32, '0')}`) // ~64 KiB of claims
      for (let n = 1; n <= 1_200; n++) await store.put(session(n, { groups }))
      const kept = await store.list(Date.now())
      const bytes = kept.reduce((sum, r) => sum + JSON.stringify(r).length, 0)
      expect(bytes).toBeLessThanOrEqual(64 * 1024 * 1024)
      expect(kept.length).toBeLessThan(1_200)
      expect(await store.get(session(1).id)).toBeUndefined()
      expect(await store.get(session(1_200).id)).toBeDefined()
    } finally {
      await store.close()
    }
  })

  it('ends the least recently used session, not a session in use that signed in earlier', async () => {
    const store = openMemorySessionStore(HOUR, { maxSessions: 3 })
    try {
      const now = Date.now()
      for (let n = 1; n <= 3; n++) await store.put(session(n, {}, now))
      await store.touch(session(1).id, now + 10_000) // person 1 is still using the gateway
      await store.put(session(4, {}, now + 20_000))
      expect(await store.get(session(1).id)).toBeDefined()
      expect(await store.get(session(2).id)).toBeUndefined()
      expect(await store.get(session(3).id)).toBeDefined()
      expect(await store.get(session(4).id)).toBeDefined()
    } finally {
      await store.close()
    }
  })

  it('says once per filling that it is full, naming the shared stores', async () => {
    const lines: string[] = []
    const store = openMemorySessionStore(HOUR, { maxSessions: 10, logger: logsTo(lines) })
    try {
      for (let n = 1; n <= 25; n++) await store.put(session(n))
      expect(lines).toHaveLength(1)
      expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', max_sessions: 10 })
      expect(lines[0]).toMatch(/memory session store is full.*sqlite or redis/)
      expect(await store.list(Date.now())).toHaveLength(10)

      // Room again (sign-outs), then full again: one more line.
      for (let n = 16; n <= 20; n++) expect(await store.delete(session(n).id)).toBe(true)
      for (let n = 26; n <= 40; n++) await store.put(session(n))
      expect(lines).toHaveLength(2)
    } finally {
      await store.close()
    }
  })
})
