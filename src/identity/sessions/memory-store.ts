// Sessions in this process's memory: one gateway process, lost at restart. Kept across reloads
// while sign_in.session.store does not change (a shared resource). Expired entries are swept
// once a minute, so a browser that never comes back costs nothing for long. A sign-in under way
// is kept in the browser's cookie, not here (sign-in-state.ts): page loads without a session add
// nothing to the process.
import { randomBytes } from 'node:crypto'
import { IdleTimeout, SESSIONS_PER_PERSON, type SessionRecord, type SessionStore } from './store.ts'

const SWEEP_MS = 60_000

export function openMemorySessionStore(idleMs: number): SessionStore {
  const sessions = new Map<string, SessionRecord>()
  /** Each person's session ids (issuer and subject), oldest first: put is the only insert, at sign-in. */
  const byPerson = new Map<string, Set<string>>()
  const refreshing = new Map<string, number>()
  const personOf = (record: SessionRecord) => `${record.issuer}\n${record.subject}`
  function forget(id: string): boolean {
    const record = sessions.get(id)
    if (record === undefined) return false
    sessions.delete(id)
    const ids = byPerson.get(personOf(record))
    ids?.delete(id)
    if (ids?.size === 0) byPerson.delete(personOf(record))
    return true
  }
  // One process: a key of its own, kept as long as the store (across reloads).
  const signInKey = randomBytes(32)
  const idle = new IdleTimeout(idleMs)
  const sweep = setInterval(() => {
    const now = Date.now()
    for (const [id, record] of sessions) if (record.expiresAt <= now || idle.ended(record, now)) forget(id)
    for (const [id, until] of refreshing) if (until <= now) refreshing.delete(id)
  }, SWEEP_MS).unref()
  return {
    kind: 'memory',
    location: 'memory',
    get: (id) => sessions.get(id),
    async put(record) {
      forget(record.id)
      sessions.set(record.id, record)
      const person = personOf(record)
      let ids = byPerson.get(person)
      if (ids === undefined) byPerson.set(person, (ids = new Set()))
      ids.add(record.id)
      if (ids.size > SESSIONS_PER_PERSON) forget(ids.values().next().value as string)
    },
    async update(record) {
      if (!sessions.has(record.id)) return false
      sessions.set(record.id, record)
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
      const record = sessions.get(id)
      if (record && record.lastSeenAt < at) sessions.set(id, { ...record, lastSeenAt: at, idleUntil: at + idle.ms })
    },
    async delete(id) {
      return forget(id)
    },
    async list(now) {
      return [...sessions.values()].filter((r) => r.expiresAt > now && !idle.ended(r, now)).sort((a, b) => b.createdAt - a.createdAt)
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
    },
  }
}
