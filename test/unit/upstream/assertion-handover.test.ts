// A reload builds a new assertion signer. It went by the store alone: within the publish-ahead of a
// new key, the running signer still signed the old key while the reload's signed the new one at once
// (a file or env store keeps no previous key to wait with), and stopped publishing the old one: the
// 401s the publish-ahead exists to prevent (found by review). It takes over the running one's key.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { openFileStore } from '../../../src/secrets/providers/file.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'
import { newSigningKey } from '../../../src/secrets/index.ts'
import { ASSERTION_KEY, createAssertionSigner } from '../../../src/upstream/index.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const identity = { iss: 'https://idp.test', sub: 'alice', clientId: null, claims: {} } as never
const kidOf = (jwt: string) => (JSON.parse(Buffer.from(jwt.split('.')[0] as string, 'base64url').toString()) as { kid: string }).kid

it('a reload within the publish-ahead keeps signing with the running key, and keeps it published', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-handover-'))
  dirs.push(dir)
  const file = join(dir, ASSERTION_KEY)
  writeFileSync(file, newSigningKey())
  const options = { issuer: 'https://gateway.test', ttlMs: 60_000, rotateEveryMs: 3_600_000, publishAheadMs: 60_000, logger: createLogger({ level: 'silent' }), fallback: null }
  const running = createAssertionSigner({ ...options, store: openFileStore(dir) })
  const first = kidOf(running.assertion('up', identity, []))
  writeFileSync(file, newSigningKey()) // the key replaced: published now, signs a minute later
  running.rotateIfDue(false)
  expect(kidOf(running.assertion('up', identity, []))).toBe(first)

  const reloaded = createAssertionSigner({ ...options, store: openFileStore(dir), handover: running.handover() })
  expect(kidOf(reloaded.assertion('up', identity, []))).toBe(first)
  const published = reloaded.jwks().keys.map((key) => key.kid)
  expect(published).toContain(first)
  expect(published).toHaveLength(2) // and the next key, ahead
})
