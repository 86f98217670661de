// A reload's prepare wrote the new config's secret values into the objects the running config
// shares with it (an upstream of the same settings is one object), before the reload was swapped
// in: while it was held before its commit (server.workers' primary holds each worker's until every
// worker has prepared; a prepare waits for a signing key under another process's write lock),
// live requests already sent the new store's credential. And a refresh of the running store meanwhile wrote its value back over it,
// which the commit then kept: the new config sent the old store's credential for good. Now the
// prepare leaves shared objects as they are, and the commit applies its values at the swap.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { openEmbeddedStore } from '../../src/secrets/embedded.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const masterKey = randomBytes(32)
let dir: string
let upstream: TestUpstream
let seen: string[]
let gw: TestGateway | undefined

const config = (path: string, refresh: string) => ({
  secrets: { store: { type: 'embedded', path, master_key: 'env:BOUNCER_MASTER_KEY' }, refresh_interval: refresh },
  // The same settings in both configs: one upstream object, shared by the running and the reloaded config.
  upstreams: [{ name: 'api', url: upstream.url, identity_assertion: true, headers: { Authorization: 'Bearer ${secret:up-token}' } }],
  routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
})

function storeWith(path: string, value: string): void {
  const store = openEmbeddedStore(path, masterKey)
  store.put('up-token', value)
  store.close()
}

/** The Authorization the upstream got for one request. */
async function sent(): Promise<string> {
  const res = await request(`${gw!.url}/x`)
  await res.body.dump()
  expect(res.statusCode).toBe(200)
  return seen.at(-1) as string
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-reload-secrets-held-'))
  seen = []
  upstream = await startUpstream((req, res) => {
    seen.push(String(req.headers.authorization ?? ''))
    res.end('ok')
  })
})

afterEach(async () => {
  await gw?.close()
  gw = undefined
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

it('live requests send the running store\'s credential while a reload to another store is prepared and not yet committed; the new one from its commit', async () => {
  const pathA = join(dir, 'a.db')
  const pathB = join(dir, 'b.db')
  storeWith(pathA, 'A')
  storeWith(pathB, 'B')
  gw = await startTestGateway(config(pathA, '1h'), { env: { BOUNCER_MASTER_KEY: masterKey.toString('base64') } })
  expect(await sent()).toBe('Bearer A')

  // Prepared, held for its commit: as server.workers' primary holds every worker's until all have
  // prepared (or a prepare waits for a signing key under another process's lock).
  await gw.writeConfig(config(pathB, '1h'))
  const staged = await gw.stageReload()
  if (!staged.ok) throw new Error(JSON.stringify(staged.result))
  expect(await sent()).toBe('Bearer A')
  expect(await sent()).toBe('Bearer A')
  expect(staged.commit()).toMatchObject({ ok: true })
  expect(await sent()).toBe('Bearer B')
}, 30_000)

it('a refresh of the running store while a reload is held does not outlive its commit: the new config sends its own store\'s credential', async () => {
  const pathA = join(dir, 'a.db')
  const pathB = join(dir, 'b.db')
  storeWith(pathA, 'A')
  storeWith(pathB, 'B')
  gw = await startTestGateway(config(pathA, '100ms'), { env: { BOUNCER_MASTER_KEY: masterKey.toString('base64') } })
  expect(await sent()).toBe('Bearer A')

  await gw.writeConfig(config(pathB, '1h'))
  const staged = await gw.stageReload()
  if (!staged.ok) throw new Error(JSON.stringify(staged.result))
  storeWith(pathA, 'A2') // rotated in the running store while the reload is held
  await waitFor(async () => (await sent()) === 'Bearer A2', 'the running config to send the rotated value', 10_000)
  expect(staged.commit()).toMatchObject({ ok: true })
  expect(await sent()).toBe('Bearer B')
}, 30_000)
