// Found by the secrets probe: a SIGTERM while a scheduled rotation's hook ran ended the gateway at
// once, exit 0, nothing said. The hook (in a process group of its own) went on and gave the
// upstream the new value, which the gateway never wrote to the store: after the restart it sent a
// value the upstream no longer held. The drain now waits for a rotation under way (its hook, then
// the store's write), within server.shutdown_timeout, and says it does.
import { execFileSync } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { waitFor, waitForText } from '../helpers/wait.ts'

const env = { SEC2_MASTER_KEY: randomBytes(32).toString('base64') }
let gateway: (ServeProcess & { dir: string }) | undefined
let dir: string

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('SIGTERM while a rotation hook runs', () => {
  it('waits for the hook and stores the value it installed', async () => {
    dir = await mkdtemp(join(tmpdir(), 'bouncer-sec2-shutdown-hook-'))
    const gate = join(dir, 'gate')
    execFileSync('mkfifo', [gate])
    const hook = join(dir, 'hook.sh')
    // Installing takes until the test opens the gate: the value reaches the "upstream" after the signal.
    await writeFile(hook, `#!/bin/sh\nv=$(cat)\ntouch ${join(dir, 'started')}\nread x < ${gate}\nprintf '%s' "$v" > ${join(dir, 'installed')}\n`)
    await chmod(hook, 0o755)
    const config = {
      secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: 'env:SEC2_MASTER_KEY' }, refresh_interval: '100ms', rotation: { 'api-token': { every: '1h', hook } } },
      upstreams: [{ name: 'app', url: 'http://127.0.0.1:9' }],
      routes: [{ id: 'app', path: '/app/*', upstream: 'app', public: true }],
    }
    gateway = await serveConfig(config, { env })
    const file = join(gateway.dir, 'bouncer.yaml')
    await waitFor(() => readFile(join(dir, 'started')).then(() => true, () => false), 'the hook to start')
    gateway.child.kill('SIGTERM')
    const output = () => (gateway?.stdout() ?? '') + (gateway?.stderr() ?? '')
    // Either the gateway says it waits, or (the fault) it has gone.
    await Promise.race([gateway.exited, waitForText(output, 'waiting for the secret rotation under way')])
    await writeFile(gate, 'go\n')
    expect(await gateway.exited).toBe(0)
    await waitFor(() => readFile(join(dir, 'installed')).then(() => true, () => false), 'the hook to install the value')
    const installed = await readFile(join(dir, 'installed'), 'utf8')
    const stored = await runCliInProcess(['secrets', 'get', 'api-token', '--reveal', '--config', file], { env })
    expect(stored.stderr).toBe('')
    expect(stored.stdout.trim()).toBe(installed)
  }, 20_000)
})
