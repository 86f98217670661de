// A probe: an empty secret (a file truncated to be rewritten in place, an empty variable) was
// applied and sent as `Bearer` with no credential; a value with a line break in an upstream header
// made every request fail mid-exchange with nothing logged. Both are refused at start and, at a
// refresh, are a secrets_refresh failure that keeps the last value.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { loadConfigText, type Config } from '../../../src/config/index.ts'
import { loadSecrets } from '../../../src/secrets/open.ts'
import { openSecretsRuntime } from '../../../src/secrets/runtime.ts'
import { createLogger } from '../../../src/telemetry/index.ts'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'bouncer-secret-values-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const header = (store: string) =>
  `upstreams:\n  - { name: up, url: "http://127.0.0.1:9", headers: { Authorization: "Bearer \${secret:up-token}" } }\nsecrets: { store: ${store} }\n`
const fileStore = () => `{ type: file, dir: "${dir}" }`
const load = (text: string, env: NodeJS.ProcessEnv = {}) => loadConfigText(text, join(dir, 'bouncer.yaml'), env)
const startErrors = (text: string, env: NodeJS.ProcessEnv = {}) => {
  const { store, diagnostics } = loadSecrets(load(text, env), env)
  store?.close()
  return diagnostics.map((d) => `${d.path.join('.')}: ${d.message}`)
}

/** A runtime on the file store whose refresh failures are collected as [task, message, secret]. */
function runtimeOn(text: string) {
  const loaded = load(text)
  const failures: Array<[string, string, unknown]> = []
  const background = {
    run: async (_task: string, work: () => unknown) => void (await work()),
    failed: (task: string, err: unknown, opts: { fields?: Record<string, unknown> }) => void failures.push([task, (err as Error).message, opts.fields?.secret_name]),
  }
  const secrets = openSecretsRuntime({ ...loaded, config: loaded.config as Config }, { logger: createLogger({ level: 'silent' }), background: background as never, format: (d) => d.message })
  return { secrets, failures }
}

it('an empty secret file is an error at start, naming the file', () => {
  writeFileSync(join(dir, 'up-token'), '\n')
  expect(startErrors(header(fileStore()))).toEqual([
    `upstreams.0.headers.Authorization: secret file ${join(dir, 'up-token')} is empty: an empty value is refused (replace the file whole: write a temporary file, then mv it over)`,
  ])
})

it('an empty BOUNCER_SECRET_* is an error at start', () => {
  expect(startErrors(header('{ type: env }'), { BOUNCER_SECRET_UP_TOKEN: '' })).toEqual([
    'upstreams.0.headers.Authorization: secret "up-token" is empty in the env store: an empty value is refused',
  ])
})

it('a secret file truncated at a refresh keeps the last value, as an unreadable one does', () => {
  writeFileSync(join(dir, 'up-token'), 'first-token\n')
  const { secrets, failures } = runtimeOn(header(fileStore()))
  try {
    writeFileSync(join(dir, 'up-token'), '')
    expect(secrets.reread()).toBe(false)
    expect(failures).toEqual([['secrets_refresh', `secret file ${join(dir, 'up-token')} is empty: an empty value is refused (replace the file whole: write a temporary file, then mv it over)`, 'up-token']])
    expect(secrets.resolve('Bearer ${secret:up-token}')).toBe('Bearer first-token')
    // Written whole afterwards (its size changes the marker): the new value is taken.
    writeFileSync(join(dir, 'up-token'), 'second-token\n')
    expect(secrets.reread()).toBe(true)
    expect(secrets.resolve('Bearer ${secret:up-token}')).toBe('Bearer second-token')
  } finally {
    secrets.close()
  }
})

const BAD = [['CR LF', 'a\r\nX-Injected: 1'], ['LF', 'line\nline'], ['NUL', 'a\0b'], ['DEL', 'a\x7fb']] as const

it.each(BAD)('a value with %s is an error at start where it stands in a header, never showing it', (_what, value) => {
  writeFileSync(join(dir, 'up-token'), value)
  const errors = startErrors(header(fileStore()))
  expect(errors).toEqual([
    'upstreams.0.headers.Authorization: secret "up-token" cannot stand in the header Authorization: it holds a character a header value may not (a line break, NUL or another control character)',
  ])
  expect(errors.join('')).not.toContain(value)
})

it.each(BAD)('a value with %s refreshed into a header keeps the last value, naming the secret and the header', (_what, value) => {
  writeFileSync(join(dir, 'up-token'), 'first-token')
  const { secrets, failures } = runtimeOn(header(fileStore()))
  try {
    writeFileSync(join(dir, 'up-token'), `${value}-longer`)
    expect(secrets.reread()).toBe(false)
    expect(failures).toEqual([['secrets_refresh', 'secret "up-token" cannot stand in the header Authorization: it holds a character a header value may not (a line break, NUL or another control character)', 'up-token']])
    expect(secrets.resolve('Bearer ${secret:up-token}')).toBe('Bearer first-token')
  } finally {
    secrets.close()
  }
})

it('a multi-line value where no header takes it (a PEM key as a datasource url) is not refused for its lines', () => {
  writeFileSync(join(dir, 'wh-url'), 'postgres://r@h/db\nsecond-line\n')
  expect(startErrors(`datasources:\n  - { name: wh, type: postgres, url: "\${secret:wh-url}", key: "a-key-of-twenty-chars" }\nsecrets: { store: ${fileStore()} }\n`)).toEqual([])
})

// Found by the notes' older list: a value under 6 characters is not taken out of log lines (it
// would blank ordinary words), and nothing said so. It is used, with a warning at its place.
it('a secret under 6 characters is a warning at its place, naming its length, and is used', () => {
  const env = { BOUNCER_SECRET_UP_TOKEN: 'abc12' }
  const { store, values, diagnostics } = loadSecrets(load(header('{ type: env }'), env), env)
  store?.close()
  expect(diagnostics.map((d) => [d.severity, `${d.path.join('.')}: ${d.message}`])).toEqual([[
    'warning',
    'upstreams.0.headers.Authorization: secret "up-token" is 5 characters: a value under 6 is not taken out of the logs (it would blank ordinary words), and a credential that short can be guessed: use a longer one',
  ]])
  expect(values.get('up-token')).toBe('abc12')
  const loaded = load(header('{ type: env }'), env)
  const secrets = openSecretsRuntime({ ...loaded, config: loaded.config as Config }, { env, logger: createLogger({ level: 'silent' }), background: {} as never, format: (d) => d.message })
  try {
    expect(secrets.resolve('Bearer ${secret:up-token}')).toBe('Bearer abc12')
  } finally {
    secrets.close()
  }
})

// Found by the review: at start a value under 6 characters is a warning, and a refresh that brought
// one in used it with nothing said (redactValues leaves it in the logs all the same).
it('a secret refreshed to a value under 6 characters is used, and a warning at its place says so', () => {
  writeFileSync(join(dir, 'up-token'), 'first-token')
  const loaded = load(header(fileStore()))
  const lines: string[] = []
  const logger = createLogger({ destination: new Writable({ write: (chunk: Buffer, _encoding, done) => void (lines.push(chunk.toString()), done()) }) })
  const background = { failed: () => {} }
  const secrets = openSecretsRuntime({ ...loaded, config: loaded.config as Config }, { logger, background: background as never, format: (d) => `${d.path.join('.')}: ${d.message}` })
  try {
    writeFileSync(join(dir, 'up-token'), 'abc')
    expect(secrets.reread()).toBe(true)
    expect(secrets.resolve('Bearer ${secret:up-token}')).toBe('Bearer abc')
    const warnings = lines.map((line) => JSON.parse(line) as { level: string; msg: string }).filter((entry) => entry.level === 'warn').map((entry) => entry.msg)
    expect(warnings).toEqual(['upstreams.0.headers.Authorization: secret "up-token" is 3 characters: a value under 6 is not taken out of the logs (it would blank ordinary words), and a credential that short can be guessed: use a longer one'])
  } finally {
    secrets.close()
  }
})
