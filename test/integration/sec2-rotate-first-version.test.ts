// Found by the secrets probe: `bouncer secrets rotate bouncer.assertion-key` on a store that held no
// key yet said "version 1 is current, version 0 is previous", and its audit record the same: there
// is no version 0, and an operator checking what the gateway may fall back to was told of one.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

const env = { SEC2_MASTER_KEY: randomBytes(32).toString('base64') }
let dir: string

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

it('a first rotation names no previous version', async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-sec2-rotate-first-'))
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({
    secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: 'env:SEC2_MASTER_KEY' } },
    upstreams: [{ name: 'app', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', public: true }],
  }))
  const first = await runCliInProcess(['secrets', 'rotate', 'bouncer.assertion-key', '--config', file], { env })
  expect(first.code, first.stderr).toBe(0)
  expect(first.stdout.trim()).toBe('rotated bouncer.assertion-key: version 1 is current')
  const second = await runCliInProcess(['secrets', 'rotate', 'bouncer.assertion-key', '--config', file], { env })
  expect(second.stdout.trim()).toBe('rotated bouncer.assertion-key: version 2 is current, version 1 is previous')
})
