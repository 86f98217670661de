// Every example config in the repository is valid: `bouncer check` accepts it.
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigFile } from '../../src/config/index.ts'

const EXAMPLES = fileURLToPath(new URL('../../examples', import.meta.url))
const ENV = { BOUNCER_ADMIN_TOKEN: 'example-admin-token-123456', REPORTS_API_KEY: 'k', BOUNCER_MASTER_KEY: 'x'.repeat(44), TICKETS_TOKEN: 't', BOUNCER_SSO_CLIENT_SECRET: 's' }

function configs(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return configs(path)
    return name.endsWith('.yaml') ? [path] : []
  })
}

describe('example configs', () => {
  it.each(configs(EXAMPLES).map((file) => [file.slice(EXAMPLES.length + 1), file]))('%s passes bouncer check', async (_name, file) => {
    const loaded = await loadConfigFile(file, { ...process.env, ...ENV })
    const errors = loaded.diagnostics.filter((d) => d.severity === 'error').map((d) => formatDiagnostic(file, d))
    expect(errors).toEqual([])
  })
})
