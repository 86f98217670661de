// secrets.db deleted (or another file moved to its path) under a running gateway, and a new store
// made there by `bouncer secrets put`: the gateway read on from the file it had opened, deleted, so
// the new value never reached the upstream and nothing said why; its own rotations went into the
// deleted file, lost at the next start (found by the operator probe). It says the file it opened is
// gone, once, and keeps the values it holds; a restart reads the new store.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { openEmbeddedStore } from '../../src/secrets/embedded.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
const masterKey = randomBytes(32).toString('base64')
const env = { BOUNCER_MASTER_KEY: masterKey }

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-secrets-replaced-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

it('a store file deleted under the running gateway is said to be gone, and the values it held stay in use', { timeout: 30_000 }, async () => {
  const path = join(dir, 'secrets.db')
  const seeded = openEmbeddedStore(path, Buffer.from(masterKey, 'base64'))
  seeded.put('sales-token', 'old-token-0123456789')
  seeded.close()
  const seen: string[] = []
  const upstream = await startUpstream((req, res) => {
    seen.push(String(req.headers.authorization))
    res.end()
  })
  const secrets = { store: { type: 'embedded', path, master_key: 'env:BOUNCER_MASTER_KEY' }, refresh_interval: '100ms' }
  const config = {
    secrets,
    upstreams: [{ name: 'sales', url: upstream.url, headers: { Authorization: 'Bearer ${secret:sales-token}' } }],
    routes: [{ id: 'sales', path: '/*', upstream: 'sales', public: true }],
  }
  const gw = await startTestGateway(config, { env })
  const sentWith = async (url: string) => {
    const res = await request(`${url}/report`)
    await res.body.dump()
    return seen.at(-1)
  }
  try {
    expect(await sentWith(gw.url)).toBe('Bearer old-token-0123456789')
    for (const file of [path, `${path}-wal`, `${path}-shm`]) await rm(file, { force: true })
    const file = join(dir, 'bouncer.yaml')
    await writeFile(file, stringify({ audit: { sinks: [] }, secrets }))
    const put = await runCliInProcess(['secrets', 'put', 'sales-token', '--config', file], { input: 'new-token-0123456789', env })
    expect(put.code, put.stderr).toBe(0)

    const gone = () => gw.logs.filter((line) => line.includes('secrets_refresh') && line.includes('deleted or replaced'))
    await waitFor(() => gone().length > 0, 'the refresh to say the store file it opened is gone', 5_000)
    expect(gone()[0]).toContain(path)
    expect(gw.logs.join('\n')).not.toMatch(/new-token|old-token/)
    // Said once, not at every refresh; the value it held stays in use.
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(gone()).toHaveLength(1)
    expect(await sentWith(gw.url)).toBe('Bearer old-token-0123456789')
  } finally {
    await gw.close()
  }
  // Restarted, the gateway reads the store now at the path.
  const restarted = await startTestGateway(config, { env })
  try {
    expect(await sentWith(restarted.url)).toBe('Bearer new-token-0123456789')
  } finally {
    await restarted.close()
    await upstream.close()
  }
})
