// Found by an adversarial probe (helper): the session store registry told stores apart by their settings and session.idle, so a reload that changed only the idle timeout opened a new, empty memory store; now the store is kept and sweeps by the new timeout (a longer one bringing back no session that had ended under the old).
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createSessionStoreRegistry } from '../../../src/identity/index.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

const HOUR = 3_600_000

afterEach(() => {
  vi.useRealTimers()
})

describe('the session store registry', () => {
  it('keeps the store across a change of session.idle only, and the sweep goes by the new timeout', async () => {
    vi.useFakeTimers()
    const registry = createSessionStoreRegistry(createLogger({ level: 'silent' }), { offline: true })
    const store = registry.acquire({ store: { type: 'memory' }, idle: HOUR })
    const now = Date.now()
    const ann = 'f'.repeat(32)
    const ben = 'e'.repeat(32)
    const put = (id: string, lastSeenAt: number) => store.put({ id, issuer: 'sso', subject: id, claims: { sub: id }, createdAt: lastSeenAt, lastSeenAt, idleUntil: lastSeenAt + HOUR, expiresAt: now + 2 * HOUR, refreshAt: null, sealed: null, audience: 'gateway' })
    // Ann last used 50 minutes ago: live at the reload. Ben 90 minutes ago: ended under the 1h then in force, not yet swept.
    await put(ann, now - 50 * 60_000)
    await put(ben, now - 90 * 60_000)

    expect(registry.acquire({ store: { type: 'memory' }, idle: 2 * HOUR })).toBe(store)
    // The new timeout is the store's once the config that names it serves (gateway/compile.ts putInForce).
    store.idle.set(2 * HOUR)
    // Ann unused for 65 minutes now: past the old timeout, within the new one she was live to take.
    await vi.advanceTimersByTimeAsync(15 * 60_000)
    expect(store.get(ann)).toBeDefined()
    // A longer timeout does not bring back a session that had ended (an adversarial probe).
    expect(store.get(ben)).toBeUndefined()

    expect(registry.acquire({ store: { type: 'memory' }, idle: HOUR })).toBe(store)
    store.idle.set(HOUR)
    await vi.advanceTimersByTimeAsync(61_000)
    expect(store.get(ann)).toBeUndefined()
    await registry.closeAll()
  })
})
