// Every example config in the repository is valid: `bouncer check` accepts it, with the variables
// its header names and the secrets its Try steps store, and nothing else.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { runCheck } from '../../src/cli/check.ts'
import { formatDiagnostic, loadConfigFile } from '../../src/config/index.ts'
import { openSecretStore } from '../../src/secrets/index.ts'
import { newSigningKey } from '../../src/secrets/index.ts'
import { ASSERTION_KEY } from '../../src/upstream/index.ts'

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

/** The header's comment lines, as one line. */
function headerOf(file: string): string {
  const lines = readFileSync(file, 'utf8').split('\n')
  return lines.slice(0, lines.findIndex((line) => !line.startsWith('#'))).map((line) => line.replace(/^#\s?/, '')).join(' ')
}

/** A value of the kind a variable's name asks for. */
function valueFor(name: string, secretsDir: string): string {
  if (name.endsWith('MASTER_KEY')) return Buffer.alloc(32, 7).toString('base64')
  if (name === 'REDIS_URL') return 'redis://127.0.0.1:6379'
  if (name.endsWith('DATABASE_URL')) return 'postgres://postgres@127.0.0.1:5432/test'
  if (name.endsWith('_CIDR')) return '10.0.0.0/8'
  if (name.endsWith('SECRETS_DIR')) return secretsDir
  return 'example-value-0123456789abcdef0123'
}

const secretValue = (name: string) => (name === ASSERTION_KEY ? newSigningKey() : 'example-secret-0123456789abcdef0123')

describe('example configs, as their headers say to run them', () => {
  // A copy: an embedded secrets store is made beside its config.
  const copy = mkdtempSync(join(tmpdir(), 'bouncer-examples-'))
  cpSync(EXAMPLES, copy, { recursive: true })
  afterAll(() => rmSync(copy, { recursive: true, force: true }))
  // The demo's files (its master key and secrets) are made by `bouncer demo`, which its header says.
  const examples = readdirSync(copy).filter((dir) => dir !== 'demo' && statSync(join(copy, dir, 'bouncer.yaml'), { throwIfNoEntry: false }))

  it.each(examples)('%s passes bouncer check with its header\'s variables and stored secrets only', async (dir) => {
    const file = join(copy, dir, 'bouncer.yaml')
    const header = headerOf(file)
    const secretsDir = join(copy, dir, 'run-secrets')
    const named = /Environment:(.*?)(?:Try\b|$)/.exec(header)?.[1] ?? ''
    const env: NodeJS.ProcessEnv = {}
    for (const name of named.match(/\b[A-Z][A-Z0-9_]{3,}\b/g) ?? []) env[name] = valueFor(name, secretsDir)
    // A secrets directory holds the files the header lists; an embedded store the secrets the Try steps put.
    const files = /holds the files ([^)]*)\)/.exec(header)?.[1]
    if (files) {
      mkdirSync(secretsDir, { recursive: true })
      for (const name of files.split(/,\s*|\s+and\s+/)) writeFileSync(join(secretsDir, name.trim()), secretValue(name.trim()))
    }
    const puts = [...header.matchAll(/bouncer secrets put ([\w.-]+)/g)].map((match) => match[1] as string)
    if (puts.length > 0) {
      const loaded = await loadConfigFile(file, env)
      const store = openSecretStore(loaded.config!.secrets!, env)
      try {
        for (const name of puts) store.put(name, secretValue(name))
      } finally {
        store.close()
      }
    }
    const result = await runCheck(file, env)
    expect(result.findings.filter((line) => !/: warning: /.test(line)), JSON.stringify(env)).toEqual([])
    expect(result.ok).toBe(true)
  })
})
