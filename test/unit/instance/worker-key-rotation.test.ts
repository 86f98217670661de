// With server.workers every worker ran the key refresh, and each rotated a due key: one period made
// two keys (found by a probe). Only the first worker rotates; the others read what it wrote.
import { expect, it } from 'vitest'
import { sharedKeyStore } from '../../../src/secrets/index.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'
import { createAssertionSigner } from '../../../src/upstream/index.ts'

it('a worker that does not rotate leaves a due assertion key to the first worker, then reads the key it wrote', () => {
  let now = Date.now() // a key made records the wall clock's time
  const options = { issuer: 'https://gateway.test', ttlMs: 60_000, rotateEveryMs: 60_000, store: null, fallback: sharedKeyStore(), logger: createLogger({ level: 'silent' }), now: () => now }
  const w1 = createAssertionSigner(options)
  const w2 = createAssertionSigner(options)
  const before = w1.jwks().keys.map((key) => key.kid)
  expect(w2.jwks().keys.map((key) => key.kid)).toEqual(before)

  now += 120_000
  expect(w2.rotateIfDue(false)).toBe(false)
  expect(w2.jwks().keys.map((key) => key.kid)).toEqual(before)
  expect(w1.rotateIfDue()).toBe(true)
  expect(w2.rotateIfDue(false)).toBe(true) // read, not rotated again
  const after = w1.jwks().keys.map((key) => key.kid)
  expect(after).not.toEqual(before)
  expect(w2.jwks().keys.map((key) => key.kid)).toEqual(after)
  expect(after).toContain(before[0]) // the key before stays published
})
