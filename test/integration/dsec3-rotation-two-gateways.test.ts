// Two gateways scheduling one rotation on one embedded store: each found the secret due and ran the
// hook with a value of its own, so the upstream got two values and the store kept whichever was
// written last (the README asks for one scheduling instance only, which nothing enforced). A lease
// row in the store now lets one run the hook; the other skips that round and reads the new version.
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { openEmbeddedStore } from '../../src/secrets/embedded.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'

const masterKey = randomBytes(32)
let dir: string
const gateways: TestGateway[] = []

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-dsec3-two-rotate-'))
})

afterAll(async () => {
  await writeFile(join(dir, 'go'), '').catch(() => {})
  await Promise.all(gateways.map((gw) => gw.close()))
  if (dir) await rm(dir, { recursive: true, force: true })
})

it('one of two gateways on one store runs a due rotation\'s hook; the other skips the round', { timeout: 30_000 }, async () => {
  const path = join(dir, 'secrets.db')
  const seeded = openEmbeddedStore(path, masterKey)
  seeded.put('dsec3-token', 'initial-value-0123456789')
  seeded.close()
  const installed = join(dir, 'installed')
  const go = join(dir, 'go')
  // Installs the value at the "upstream" (a line per run), then waits to be let go.
  const hook = `cat >> ${installed}; echo >> ${installed}; while [ ! -f ${go} ]; do sleep 0.05; done`
  const config = {
    secrets: {
      store: { type: 'embedded', path, master_key: 'env:BOUNCER_MASTER_KEY' },
      refresh_interval: '100ms',
      rotation: { 'dsec3-token': { every: '1h', generate: 24, hook } },
    },
    upstreams: [{ name: 'app', url: 'http://127.0.0.1:9', headers: { Authorization: 'Bearer ${secret:dsec3-token}' } }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', public: true }],
  }
  const runs = async () => (await readFile(installed, 'utf8').catch(() => '')).split('\n').filter(Boolean)
  // The seeded version is made due by the clock: an hour's rotation, a version an hour and a minute old.
  const aged = new DatabaseSync(path)
  aged.prepare('UPDATE secret_versions SET created_at = ? WHERE name = ?').run(new Date(Date.now() - 3_660_000).toISOString(), 'dsec3-token')
  aged.close()
  const env = { BOUNCER_MASTER_KEY: masterKey.toString('base64') }
  gateways.push(await startTestGateway(config, { env }), await startTestGateway(config, { env }))

  await waitFor(async () => (await runs()).length >= 1, 'a hook to start', 10_000)
  // The other gateway checks the schedule every 100 ms while the hook runs: it skips (said at
  // debug level), or, without the lease, runs the hook a second time.
  await waitFor(async () => (await runs()).length >= 2 || gateways.some((gw) => gw.logs.join('').includes('another gateway on this store is rotating it')), 'the other gateway to meet the due rotation', 10_000)
  expect(await runs()).toHaveLength(1)

  await writeFile(go, '')
  await waitFor(() => gateways.some((gw) => gw.logs.join('').includes('"msg":"secret rotated"')), 'the rotation to finish', 10_000)
  const [value] = await runs()
  const check = openEmbeddedStore(path, masterKey)
  try {
    expect(check.get('dsec3-token')).toBe(value)
    expect(check.versions('dsec3-token')).toHaveLength(2)
  } finally {
    check.close()
  }
  expect(await runs()).toEqual([value])
})
