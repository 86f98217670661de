// api_keys.cache bounds how long a key revoked elsewhere (`bouncer keys revoke`, another instance)
// still works here: "a revoked key must be refused within a second on every instance". Its entries
// aged on the wall clock: one set back an hour (an NTP correction, a VM resumed) kept a key cached,
// revoked or not, for an hour more. They age on the monotonic clock now.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { newApiKey, openApiKeyStore } from '../../src/identity/index.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  // Only Date is faked (timers and performance.now stay real), before anything reads it.
  vi.useFakeTimers({ toFake: ['Date'] })
  vi.setSystemTime(new Date('2027-03-14T12:00:00.000Z'))
  dir = await mkdtemp(join(tmpdir(), 'bouncer-api-keys-clock-'))
  upstream = await startUpstream()
  gw = await startTestGateway({
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') }, cache: '500ms' },
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'api-keys', subject: 'loader' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'data', path: '/*', upstream: 'api', accept: ['api_key'] }],
  })
}, 60_000)

afterAll(async () => {
  vi.useRealTimers()
  await gw?.close()
  await upstream?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

it('a key revoked elsewhere is refused within api_keys.cache, however far the wall clock stepped back', async () => {
  const store = openApiKeyStore({ type: 'sqlite', path: join(dir, 'keys.db') })
  const created = newApiKey()
  try {
    await store.insert({ id: created.id, principal: 'loader', description: null, hash: created.hash, createdAt: Date.now(), expiresAt: null, revokedAt: null, lastUsedAt: null })
    const status = async () => {
      const res = await request(`${gw.url}/x`, { headers: { 'x-api-key': created.key } })
      await res.body.dump()
      return res.statusCode
    }
    expect(await status()).toBe(200) // read and cached
    vi.setSystemTime(new Date('2027-03-14T11:00:00.000Z')) // an hour back
    await store.revoke(created.id, Date.now()) // as `bouncer keys revoke` does, from another process
    await waitFor(async () => (await status()) === 401, 'the revocation seen', 3_000)
  } finally {
    await store.close()
  }
})
