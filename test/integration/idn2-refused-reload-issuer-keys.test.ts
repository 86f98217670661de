// A refused reload must not cost the running issuer's keys their hand-on: found by the identity
// probe, a reload refused after it had made a key set for an issuer whose settings it changed (here
// api_keys naming a file that is no SQLite database) closed that key set, and with it the record of
// which key set of that issuer's source held keys. The running key set kept serving, but the next
// reload that changed the issuer's settings (the same change, now with a good api_keys) started
// empty: made while the provider was down, every valid token of the issuer turned from 200 into
// 503 identity_provider_unavailable until the provider came back. So did settings A → B → A while
// a request held A's runtime: A's key set was kept (still open), B's closing lost the record.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let release: () => void = () => {}
let token: string

function config(issuer: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE], ...issuer }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'data', url: upstream.url }],
    routes: [{ id: 'data', path: '/*', upstream: 'data' }],
    ...extra,
  }
}

beforeAll(async () => {
  upstream = await startUpstream(async (req, res) => {
    if (req.url === '/hold') await new Promise<void>((resolve) => (release = resolve))
    res.end('ok')
  })
})

/** A gateway holding the provider's keys, a token of it, and the provider down. */
beforeEach(async () => {
  idp = await startIdentityProvider()
  gateway = await startTestGateway(config({ jwks_cooldown: '30s' }))
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys')
  token = await idp.token('looker-reports')
  expect(await status()).toBe(200)
  await idp.stop()
})

afterEach(async () => {
  release()
  await gateway?.close()
})

afterAll(async () => {
  await upstream?.close()
})

async function status(path = '/x'): Promise<number> {
  const res = await request(`${gateway.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
  await res.body.dump()
  return res.statusCode
}

it('keeps the issuer\'s keys for the next reload after a reload was refused, while the provider is down', async () => {
  const notSqlite = join(gateway.dir, 'keys.txt')
  writeFileSync(notSqlite, 'this is not an SQLite database, not even close to one; '.repeat(100))
  await gateway.writeConfig(config({ jwks_cooldown: '10s' }, { api_keys: { store: { type: 'sqlite', path: notSqlite } } }))
  expect((await gateway.reload()).ok).toBe(false)
  expect(await status()).toBe(200) // the running config serves on

  await gateway.writeConfig(config({ jwks_cooldown: '10s' }))
  expect((await gateway.reload()).ok).toBe(true)
  expect(await status()).toBe(200)
  expect(gateway.state.runtime.issuerKeys.get('corp')).toMatchObject({ hasKeys: true })
})

it('keeps them after settings A, B and A again while a request holds A\'s runtime', async () => {
  const held = status('/hold')
  await waitFor(() => gateway.state.runtime.usage.inFlight === 1, 'the held request')
  await gateway.writeConfig(config({ jwks_cooldown: '20s' }))
  expect((await gateway.reload()).ok).toBe(true)
  await gateway.writeConfig(config({ jwks_cooldown: '30s' }))
  expect((await gateway.reload()).ok).toBe(true)
  release()
  expect(await held).toBe(200)
  await gateway.writeConfig(config({ jwks_cooldown: '5s' }))
  expect((await gateway.reload()).ok).toBe(true)
  expect(await status()).toBe(200)
})
