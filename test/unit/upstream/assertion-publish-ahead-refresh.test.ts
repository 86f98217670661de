// A new assertion key signs PUBLISH_AHEAD (90 s) after it was made, a margin that assumed every
// worker and instance reads the store within ~30 s. With `secrets.refresh_interval: 5m`, a worker
// that read the new key 4 minutes late signed with it at once, before any verifier had seen it.
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

it('a key read late under a long refresh_interval is published for that interval and a JWKS max-age before it signs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-publish-ahead-'))
  dirs.push(dir)
  const file = join(dir, ASSERTION_KEY)
  writeFileSync(file, newSigningKey())
  let clock = Date.now()
  const options = { issuer: 'https://gateway.test', ttlMs: 60_000, rotateEveryMs: 30 * 86_400_000, refreshIntervalMs: 300_000, logger: createLogger({ level: 'silent' }), fallback: null, now: () => clock }
  const running = createAssertionSigner({ ...options, store: openFileStore(dir) })
  const first = kidOf(running.assertion('up', identity, []))
  writeFileSync(file, newSigningKey()) // replaced now; this worker reads it 4 minutes later
  clock += 240_000
  running.rotateIfDue(false)
  expect(kidOf(running.assertion('up', identity, []))).toBe(first)
  expect(running.jwks().keys.map((key) => key.kid)).toHaveLength(2) // the new key published, ahead
  clock += 140_000 // 6m20s: past 5 minutes of refresh, 60 s of max-age and 10 s of skew
  running.rotateIfDue(false)
  expect(kidOf(running.assertion('up', identity, []))).not.toBe(first)
})
