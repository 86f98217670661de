// A secret deleted and stored again between two refreshes (a script's `secrets delete NAME &&
// secrets put NAME`, a store restored from a backup) starts at version 1 once more. The running
// gateway told a new value by the version number alone took "version 1" for the one it held and
// sent the deleted value to the upstream until a restart (found by the operator probe).
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { openEmbeddedStore } from '../../src/secrets/embedded.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
const masterKey = randomBytes(32).toString('base64')

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-secret-recreated-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

it('a secret deleted and stored again between two refreshes is sent with its new value', { timeout: 30_000 }, async () => {
  const path = join(dir, 'secrets.db')
  const store = openEmbeddedStore(path, Buffer.from(masterKey, 'base64'))
  store.put('sales-token', 'old-token-0123456789')
  const seen: string[] = []
  const upstream = await startUpstream((req, res) => {
    seen.push(String(req.headers.authorization))
    res.end()
  })
  const gw = await startTestGateway({
    secrets: { store: { type: 'embedded', path, master_key: 'env:BOUNCER_MASTER_KEY' }, refresh_interval: '200ms' },
    upstreams: [{ name: 'sales', url: upstream.url, headers: { Authorization: 'Bearer ${secret:sales-token}' } }],
    routes: [{ id: 'sales', path: '/*', upstream: 'sales', public: true }],
  }, { env: { BOUNCER_MASTER_KEY: masterKey } })
  const sentWith = async () => {
    const res = await request(`${gw.url}/report`)
    await res.body.dump()
    return seen.at(-1)
  }
  try {
    expect(await sentWith()).toBe('Bearer old-token-0123456789')
    // One turn of the event loop: no refresh runs between the two.
    expect(store.delete('sales-token')).toBe(true)
    expect(store.put('sales-token', 'new-token-0123456789')).toBe(1)
    await waitFor(async () => (await sentWith()) === 'Bearer new-token-0123456789', 'the upstream to be sent the new value', 5_000)
  } finally {
    store.close()
    await gw.close()
    await upstream.close()
  }
})
