// Sessions in this process's memory: one gateway process, lost at restart. Kept across reloads
// while sign_in.session.store does not change (a shared resource). Expired entries are swept
// once a minute, so a browser that never comes back costs nothing for long. A sign-in under way
// is kept in the browser's cookie, not here (sign-in-state.ts): page loads without a session add
// nothing to the process.
import { randomBytes } from 'node:crypto'
import type { Logger } from '../../telemetry/index.ts'
import { IdleTimeout, SESSIONS_PER_PERSON, type SessionRecord, type SessionStore } from './store.ts'

const SWEEP_MS = 60_000

/**
 * Sessions the process keeps at most, and their bytes (as JSON: about what the heap holds of them).
 * SESSIONS_PER_PERSON bounds one person, not how many people: a provider where anyone can make an
 * account (Google, GitHub, a self-service tenant) let one client sign in as thousands, each session
 * kept to its idle timeout, and nothing bounded the heap. 64 MiB, an eighth of the 512 MiB the
 * Kubernetes manifests give, is ~25,000 sessions of ~2.5 KiB (an ID token's claims and the sealed
 * tokens), and still ~450 at the largest ID token (64 KiB, held as claims and sealed); 50,000 bounds
 * the count where records are smaller. Past either, the least recently used session ends and its
 * person signs in again (no prompt while the provider's session lasts): refusing new sign-ins would
 * lock everyone out.
 */
export const MEMORY_SESSIONS = 50_000
export const MEMORY_SESSION_BYTES = 64 * 1024 * 1024
/** A filling ends, so the next one is logged, once a tenth of the room is free again: one line per filling, not per session ended. */
const FILLED = 0.9

export interface MemorySessionStoreOptions {
  /** Where "the store is full" goes; none: not logged. */
  readonly logger?: Logger | null
  /** Smaller bounds (tests). */
  readonly maxSessions?: number
  readonly maxBytes?: number
}

/** What a session holds, as JSON: measured at sign-in and refresh, never per request. */
const sizeOf = (record: SessionRecord): number => JSON.stringify(record).length

interface Entry {
  readonly record: SessionRecord
  readonly bytes: number
}

export function openMemorySessionStore(idleMs: number, options: MemorySessionStoreOptions = {}): SessionStore {
  const { logger = null, maxSessions = MEMORY_SESSIONS, maxBytes = MEMORY_SESSION_BYTES } = options
  /** Least recently used first: put, update and touch (every few seconds of use) move a session to the end. */
  const sessions = new Map<string, Entry>()
  let bytes = 0
  let full = false
  /** Each person's session ids (issuer and subject), oldest first: put is the only insert, at sign-in. */
  const byPerson = new Map<string, Set<string>>()
  const refreshing = new Map<string, number>()
  const personOf = (record: SessionRecord) => `${record.issuer}\n${record.subject}`
  function forget(id: string): boolean {
    const entry = sessions.get(id)
    if (entry === undefined) return false
    sessions.delete(id)
    bytes -= entry.bytes
    const ids = byPerson.get(personOf(entry.record))
    ids?.delete(id)
    if (ids?.size === 0) byPerson.delete(personOf(entry.record))
    return true
  }
  /** Written last: the most recently used. */
  function keep(record: SessionRecord, size: number): void {
    const before = sessions.get(record.id)
    sessions.delete(record.id)
    sessions.set(record.id, { record, bytes: size })
    bytes += size - (before?.bytes ?? 0)
  }
  /** Past either bound, the least recently used sessions end; never the one just written. */
  function makeRoom(): void {
    if (sessions.size <= maxSessions && bytes <= maxBytes) {
      if (full && sessions.size <= maxSessions * FILLED && bytes <= maxBytes * FILLED) full = false
      return
    }
    if (!full) {
      full = true
      logger?.warn({ sessions: sessions.size, bytes, max_sessions: maxSessions, max_bytes: maxBytes },
        `the memory session store is full (${maxSessions} sessions or ${Math.round(maxBytes / 1024 / 1024)} MiB): each sign-in now ends the least recently used session, whose person must sign in again; a shared store (sign_in.session.store: sqlite or redis) keeps sessions outside the gateway's heap`)
    }
    for (const id of sessions.keys()) {
      if ((sessions.size <= maxSessions && bytes <= maxBytes) || sessions.size === 1) break
      forget(id)
    }
  }
  // One process: a key of its own, kept as long as the store (across reloads).
  const signInKey = randomBytes(32)
  const idle = new IdleTimeout(idleMs)
  const sweep = setInterval(() => {
    const now = Date.now()
    for (const [id, { record }] of sessions) if (record.expiresAt <= now || idle.ended(record, now)) forget(id)
    for (const [id, until] of refreshing) if (until <= now) refreshing.delete(id)
  }, SWEEP_MS).unref()
  return {
    kind: 'memory',
    location: 'memory',
    get: (id) => sessions.get(id)?.record,
    async put(record) {
      forget(record.id)
      keep(record, sizeOf(record))
      const person = personOf(record)
      let ids = byPerson.get(person)
      if (ids === undefined) byPerson.set(person, (ids = new Set()))
      ids.add(record.id)
      if (ids.size > SESSIONS_PER_PERSON) forget(ids.values().next().value as string)
      makeRoom()
    },
    async update(record) {
      if (!sessions.has(record.id)) return false
      // A refresh may bring more claims (groups): measured again.
      keep(record, sizeOf(record))
      makeRoom()
      return true
    },
    async claimRefresh(id, until, now) {
      if ((refreshing.get(id) ?? 0) > now) return false
      refreshing.set(id, until)
      return true
    },
    async releaseRefresh(claim, until) {
      if (refreshing.get(claim) === until) refreshing.delete(claim)
    },
    async touch(id, at) {
      const entry = sessions.get(id)
      if (entry && entry.record.lastSeenAt < at) keep({ ...entry.record, lastSeenAt: at, idleUntil: at + idle.ms }, entry.bytes)
    },
    async delete(id) {
      return forget(id)
    },
    async list(now) {
      return [...sessions.values()].map((e) => e.record).filter((r) => r.expiresAt > now && !idle.ended(r, now)).sort((a, b) => b.createdAt - a.createdAt)
    },
    async signInKey() {
      return signInKey
    },
    // In the process: there from the first request.
    status: () => 'ready',
    answeredOnce: () => true,
    idle,
    async close() {
      clearInterval(sweep)
      sessions.clear()
      byPerson.clear()
      bytes = 0
    },
  }
}
