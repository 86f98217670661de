// Sessions in this process's memory: one gateway process, lost at restart. Kept across reloads
// while sign_in.session.store does not change (a shared resource). Expired entries are swept
// once a minute, so a browser that never comes back costs nothing for long. Every page load
// without a session begins a sign-in, so the pending ones are bounded (the oldest go first): a
// flood of page loads cannot grow the process without limit.
import { createLru } from '../../collections/index.ts'
import type { PendingSignIn, SessionRecord, SessionStore } from './store.ts'

const SWEEP_MS = 60_000
const MAX_PENDING = 100_000

export function openMemorySessionStore(idleMs: number): SessionStore {
  const sessions = new Map<string, SessionRecord>()
  const pending = createLru<PendingSignIn>(MAX_PENDING)
  let idle = idleMs
  const sweep = setInterval(() => {
    const now = Date.now()
    for (const [id, record] of sessions) if (record.expiresAt <= now || record.lastSeenAt + idle <= now) sessions.delete(id)
  }, SWEEP_MS).unref()
  return {
    kind: 'memory',
    location: 'memory',
    get: (id) => sessions.get(id),
    async put(record) {
      sessions.set(record.id, record)
    },
    async update(record) {
      if (!sessions.has(record.id)) return false
      sessions.set(record.id, record)
      return true
    },
    async touch(id, at) {
      const record = sessions.get(id)
      if (record && record.lastSeenAt < at) sessions.set(id, { ...record, lastSeenAt: at })
    },
    async delete(id) {
      return sessions.delete(id)
    },
    async list(now) {
      return [...sessions.values()].filter((r) => r.expiresAt > now).sort((a, b) => b.createdAt - a.createdAt)
    },
    async putPending(state, entry, expiresAt) {
      pending.set(state, entry, expiresAt)
    },
    async takePending(state, now) {
      const entry = pending.get(state, now)
      pending.delete(state)
      return entry
    },
    setIdle(ms) {
      idle = ms
    },
    async close() {
      clearInterval(sweep)
      sessions.clear()
      pending.clear()
    },
  }
}
