// Found by the secrets probe: a scheduled rotation's hook ran with the gateway's whole environment,
// the master key's variable (secrets.store.master_key: env:NAME) in it, and a failing hook's output
// is logged: a hook that printed its environment (a `set -x`, an `env` while debugging, a tool's
// error dump) put the key that opens every secret in the gateway's log. The hook gets no master
// key, and the master key's text is scrubbed from every log line as a secret value is.
import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'
import { waitForText } from '../helpers/wait.ts'

const masterKey = randomBytes(32).toString('base64')
let gateway: (ServeProcess & { dir: string }) | undefined
let dir: string

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('a rotation hook and the master key', () => {
  it('is not given the master key, and a hook that prints it does not put it in the log', async () => {
    dir = await mkdtemp(join(tmpdir(), 'bouncer-sec2-hook-'))
    const seen = join(dir, 'seen')
    const hook = join(dir, 'hook.sh')
    // Writes what it was given, prints the key whichever way it came, and fails: its output is logged.
    await writeFile(hook, `#!/bin/sh\nprintf '%s' "\${SEC2_MASTER_KEY:-none}" > ${seen}\necho "debug: SEC2_MASTER_KEY=\${SEC2_MASTER_KEY:-none} file=$(cat ${join(dir, 'key')})"\nexit 1\n`)
    await chmod(hook, 0o755)
    await writeFile(join(dir, 'key'), masterKey)
    gateway = await serveConfig({
      secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: 'env:SEC2_MASTER_KEY' }, refresh_interval: '100ms', rotation: { 'api-token': { every: '1h', hook } } },
      upstreams: [{ name: 'app', url: 'http://127.0.0.1:9' }],
      routes: [{ id: 'app', path: '/app/*', upstream: 'app', public: true }],
    }, { env: { SEC2_MASTER_KEY: masterKey } })
    const output = () => (gateway?.stdout() ?? '') + (gateway?.stderr() ?? '')
    const log = await waitForText(output, 'secret rotation hook failed')
    expect(await readFile(seen, 'utf8')).toBe('none')
    expect(log).toContain('debug: SEC2_MASTER_KEY=none file=[redacted]')
    expect(output()).not.toContain(masterKey)
  }, 20_000)
})
