// Found by an adversarial probe (helper): the session store registry told stores apart by their settings and session.idle, so a reload that changed only the idle timeout opened a new, empty memory store; now the store is kept and sweeps by the new timeout.
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
    const id = 'f'.repeat(32)
    // Last used 90 minutes ago: live under a 2h idle timeout, not under 1h.
    await store.put({ id, issuer: 'sso', subject: 'ann', claims: { sub: 'ann' }, createdAt: now - 90 * 60_000, lastSeenAt: now - 90 * 60_000, expiresAt: now + HOUR, refreshAt: null, sealed: null, audience: 'gateway' })

    expect(registry.acquire({ store: { type: 'memory' }, idle: 2 * HOUR })).toBe(store)
    await vi.advanceTimersByTimeAsync(61_000)
    expect(store.get(id)).toBeDefined()

    expect(registry.acquire({ store: { type: 'memory' }, idle: HOUR })).toBe(store)
    await vi.advanceTimersByTimeAsync(61_000)
    expect(store.get(id)).toBeUndefined()
    await registry.closeAll()
  })
})
