// Sessions in this process's memory: one gateway process, lost at restart. Kept across reloads
// while sign_in.session.store does not change (a shared resource). Expired entries are swept
// once a minute, so a browser that never comes back costs nothing for long.
import type { PendingSignIn, SessionRecord, SessionStore } from './store.ts'

const SWEEP_MS = 60_000

export function openMemorySessionStore(idleMs: number): SessionStore {
  const sessions = new Map<string, SessionRecord>()
  const pending = new Map<string, { pending: PendingSignIn; expiresAt: number }>()
  const sweep = setInterval(() => {
    const now = Date.now()
    for (const [id, record] of sessions) if (record.expiresAt <= now || record.lastSeenAt + idleMs <= now) sessions.delete(id)
    for (const [state, entry] of pending) if (entry.expiresAt <= now) pending.delete(state)
  }, SWEEP_MS).unref()
  return {
    kind: 'memory',
    location: 'memory',
    get: (id) => sessions.get(id),
    async put(record) {
      sessions.set(record.id, record)
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
      pending.set(state, { pending: entry, expiresAt })
    },
    async takePending(state, now) {
      const entry = pending.get(state)
      pending.delete(state)
      return entry && entry.expiresAt > now ? entry.pending : undefined
    },
    async close() {
      clearInterval(sweep)
      sessions.clear()
      pending.clear()
    },
  }
}
