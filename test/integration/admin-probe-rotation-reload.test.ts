// A reload (SIGHUP, POST /api/reload, a config deploy) while a scheduled rotation's hook runs: the
// reload closed the store the rotation was to write to, and the new config's scheduler, knowing
// nothing of it, found the secret due and ran the hook again with another value. Two values went to
// the upstream; the first hook's could not be stored ("database is not open"), and whichever hook
// finished last left the upstream holding a value the store might not (found by the operator
// probe). The hook runs once, and its value is the one made current.
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
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
  dir = await mkdtemp(join(tmpdir(), 'bouncer-rotation-reload-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

it('a reload while the rotation hook runs: the hook runs once, and its value is made current and sent', { timeout: 40_000 }, async () => {
  const path = join(dir, 'secrets.db')
  const seeded = openEmbeddedStore(path, Buffer.from(masterKey, 'base64'))
  seeded.put('sales-token', 'initial-value-0123456789')
  seeded.close()
  const installed = join(dir, 'installed')
  const go = join(dir, 'go')
  // Installs the value at the "upstream" (a line per run), then waits to be let go.
  const hook = `cat >> ${installed}; echo >> ${installed}; while [ ! -f ${go} ]; do sleep 0.05; done`
  const seen: string[] = []
  const upstream = await startUpstream((req, res) => {
    seen.push(String(req.headers.authorization))
    res.end()
  })
  const config = (routes: number) => ({
    secrets: {
      store: { type: 'embedded', path, master_key: 'env:BOUNCER_MASTER_KEY' },
      refresh_interval: '100ms',
      rotation: { 'sales-token': { every: '1s', generate: 24, hook } },
    },
    upstreams: [{ name: 'sales', url: upstream.url, headers: { Authorization: 'Bearer ${secret:sales-token}' } }],
    routes: Array.from({ length: routes }, (_, i) => ({ id: `sales-${i}`, path: i === 0 ? '/*' : `/other-${i}/*`, upstream: 'sales', public: true })),
  })
  const gw = await startTestGateway(config(1), { env: { BOUNCER_MASTER_KEY: masterKey } })
  const runs = async () => (await readFile(installed, 'utf8').catch(() => '')).split('\n').filter(Boolean)
  try {
    await waitFor(async () => (await runs()).length === 1, 'the hook to start', 10_000)
    await gw.writeConfig(config(2))
    expect((await gw.reload()).ok).toBe(true)
    // Ten refreshes of the new config while the hook still runs.
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    await writeFile(go, '')
    const [value] = await runs()
    await waitFor(async () => {
      const res = await request(`${gw.url}/report`)
      await res.body.dump()
      return seen.at(-1) === `Bearer ${value}`
    }, 'the hook\'s value sent to the upstream', 5_000)
    expect(await runs()).toEqual([value])
    const check = openEmbeddedStore(path, Buffer.from(masterKey, 'base64'))
    try {
      expect(check.get('sales-token')).toBe(value)
      expect(check.versions('sales-token')).toHaveLength(2)
    } finally {
      check.close()
    }
    expect(gw.logs.join('\n')).not.toContain('secret rotation failed')
  } finally {
    await writeFile(go, '')
    await gw.close()
    await upstream.close()
  }
})
