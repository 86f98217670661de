// Found by an operations probe: a SIGHUP that reached `bouncer serve` while it started (a reload
// asked for just after a start: `systemctl reload`, a config tool, a certificate renewal hook)
// ended the gateway, Node's default for the signal, with exit 129 and not a word, since serve
// installed its handler only once it listened. Now it is remembered, and the config is reloaded
// once the gateway runs (the edit that prompted it may postdate the start's read). A SIGTERM then
// ended it the same way (143, not a word): now it is said, and the gateway stops once it is up.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterEach, expect, it } from 'vitest'
import { BIN } from '../helpers/cli.ts'
import { waitFor, waitForText } from '../helpers/wait.ts'

let dir: string | undefined
let kill: (() => void) | undefined

afterEach(async () => {
  kill?.()
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** `bouncer serve` with two workers, started: its output so far, and how it ended once it has. */
async function startServe() {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-early-sighup-'))
  const spill = join(dir, 'spill')
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({
    server: { listen: '127.0.0.1:0', workers: 2 },
    admin: { listen: '127.0.0.1:0' },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: spill },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
  }))
  const child = spawn(process.execPath, [BIN, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] })
  kill = () => child.kill('SIGKILL')
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as string | null }))

  // The spill directory is claimed first thing in the start, a second or more before the workers listen.
  await waitFor(() => existsSync(join(spill, 'owner.json')) || child.exitCode !== null, 'the start to claim the spill directory', 30_000)
  expect(stdout).toBe('')
  return { child, exited, stdout: () => stdout, stderr: () => stderr }
}

it('a SIGHUP while the workers start is a reload once they run, not the end of the process', async () => {
  const { child, exited, stdout, stderr } = await startServe()
  child.kill('SIGHUP')

  const ended = await Promise.race([exited, waitForText(stdout, 'admin listening on', 60_000).then(() => null)])
  expect(ended, stderr()).toBeNull()
  await waitForText(stderr, /"generation":2[^\n]*"msg":"config reloaded"/, 30_000)
  child.kill('SIGTERM')
  expect(await exited).toEqual({ code: 0, signal: null })
}, 120_000)

it('a SIGTERM while the workers start is said, and the gateway stops once it is up: exit 0, not 143', async () => {
  const { child, exited, stdout, stderr } = await startServe()
  child.kill('SIGTERM')
  expect(await exited, stderr()).toEqual({ code: 0, signal: null })
  expect(stderr()).toContain('bouncer: SIGTERM while starting: the gateway stops as soon as its start ends')
  expect(stdout()).toContain('admin listening on')
  expect(stderr()).toMatch(/"signal":"SIGTERM"[^\n]*"msg":"draining"/)
}, 120_000)
