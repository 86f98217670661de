// A review: a datasource key from the secrets store is checked for its least length at start
// (secrets/open.ts); a refresh (a rotation, a file replaced) applied a shorter one unchecked.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { loadConfigText, type Config } from '../../../src/config/index.ts'
import { openSecretsRuntime } from '../../../src/secrets/runtime.ts'
import { createLogger } from '../../../src/telemetry/index.ts'

let dir: string
afterEach(() => rmSync(dir, { recursive: true, force: true }))

it('a refreshed datasource key shorter than 16 characters is refused, and the last good one stays', () => {
  dir = mkdtempSync(join(tmpdir(), 'bouncer-least-length-'))
  writeFileSync(join(dir, 'dataset-key'), 'a-key-of-twenty-chars')
  const loaded = loadConfigText(`datasources:\n  - { name: wh, type: postgres, url: "postgres://r@h/db", key: "\${secret:dataset-key}" }\nsecrets: { store: { type: file, dir: "${dir}" } }\n`, join(dir, 'bouncer.yaml'), {})
  const failures: string[] = []
  const background = { run: async (_task: string, work: () => unknown) => void (await work()), failed: (_task: string, err: unknown) => void failures.push((err as Error).message) }
  const secrets = openSecretsRuntime({ ...loaded, config: loaded.config as Config }, { logger: createLogger({ level: 'silent' }), background: background as never, format: (d) => d.message })
  try {
    expect(secrets.resolve('${secret:dataset-key}')).toBe('a-key-of-twenty-chars')
    writeFileSync(join(dir, 'dataset-key'), 'short!')
    expect(secrets.reread()).toBe(false)
    expect(failures).toEqual(['secret "dataset-key" is 6 characters: a datasource\'s key is at least 16'])
    expect(secrets.resolve('${secret:dataset-key}')).toBe('a-key-of-twenty-chars')
  } finally {
    secrets.close()
  }
})
